"""The `vfs://` protocol of fsspec: data tools read (and write) a volume's versions without a mount.

    pandas.read_csv("vfs://results/run1.csv@yesterday", storage_options={"location": STORE})
    fsspec.open("vfs://data/x.parquet@3", location=STORE)

Registered through the `fsspec.specs` entry point (pyproject.toml). A path is a path inside the volume,
with the `@SPEC` of the mount on its last component where it reads; storage options are those of
`vfs.open`: `location` (the store directory, or a remote volume `s3://BUCKET/PREFIX` with `endpoint_url`
and `cache_dir`), `writable` (False unless given: then writes raise PermissionError), `password`,
`password_file`, `key_file` (else the environment's passphrase sources).
Writing a file puts it as a new version when it is closed; removing a path is a new commit (its
history stays).
"""

from __future__ import annotations

import builtins
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from fsspec.spec import AbstractFileSystem

from vfs.api.opening import open
from vfs.api.reading import Entry
from vfs.api.volume import Volume


def _info(e: Entry) -> dict[str, Any]:
    return {"name": e.name, "size": e.size, "type": e.type, "mode": e.mode, "mtime": e.mtime,
            "version": e.version, "hash": e.hash}


class VfsFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """fsspec's view of one volume (`location`); see the module's docstring."""

    protocol = "vfs"
    root_marker = ""

    def __init__(self, location: str | os.PathLike[str] | None = None, *, writable: bool = False,
                 password: str | None = None, password_file: str | None = None, key_file: str | None = None,
                 endpoint_url: str | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.volume: Volume = open(location, writable=writable, password=password, password_file=password_file,
                                   key_file=key_file, endpoint_url=endpoint_url, cache_dir=cache_dir)

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]  # type: ignore[return-value]
        text = str(path)
        if text.startswith("vfs://"):
            text = text[len("vfs://"):]
        return text.strip("/")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        entries = self.volume.ls(self._strip_protocol(path), detail=True)
        return [_info(e) if detail else e.name for e in entries if isinstance(e, Entry)]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return _info(self.volume.stat(self._strip_protocol(path)))

    def exists(self, path: str, **kwargs: Any) -> bool:
        return self.volume.exists(self._strip_protocol(path))

    def modified(self, path: str) -> datetime:
        return datetime.fromtimestamp(self.info(path)["mtime"])

    def ukey(self, path: str) -> str:
        return self.volume.hash(self._strip_protocol(path))

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: Any = None, **kwargs: Any) -> Any:
        return self.volume.open(self._strip_protocol(path), mode)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        path = self._strip_protocol(path)
        if start is None and end is None:
            return self.volume.read_bytes(path)
        with self.volume.open(path) as f:
            size = self.info(path)["size"]
            lo = 0 if start is None else (start if start >= 0 else max(size + start, 0))
            hi = size if end is None else (end if end >= 0 else max(size + end, 0))
            f.seek(lo)
            return f.read(max(hi - lo, 0))

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if mode == "create" and self.volume.exists(path):
            raise FileExistsError(f"{path} exists in the volume")
        self.volume.write_bytes(path, value)

    def put_file(self, lpath: str, rpath: str, callback: Any = None, mode: str = "overwrite", **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        if os.path.isdir(lpath):
            self.volume.mkdir(rpath)
            return
        if mode == "create" and self.volume.exists(rpath):
            raise FileExistsError(f"{rpath} exists in the volume")
        # Exactly at rpath (fsspec computed it), also when rpath is a directory now: as a file object.
        with builtins.open(lpath, "rb") as f:
            self.volume.put(rpath, f, progress=False)

    def get_file(self, rpath: str, lpath: str, callback: Any = None, outfile: Any = None, **kwargs: Any) -> None:
        rpath = self._strip_protocol(rpath)
        if self.info(rpath)["type"] == "directory":
            os.makedirs(lpath, exist_ok=True)
            return
        if outfile is not None:
            with self.volume.open(rpath) as f:
                shutil.copyfileobj(f, outfile)
            return
        self.volume.get(rpath, Path(lpath), progress=False)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.info(path1)["type"] == "directory":
            self.volume.mkdir(path2)
            return
        with self.volume.open(path1) as f:
            self.volume.put(path2, f, progress=False)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.volume.mkdir(self._strip_protocol(path))

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        path = self._strip_protocol(path)
        if not exist_ok and self.volume.exists(path):
            raise FileExistsError(f"{path} exists in the volume")
        self.volume.mkdir(path)

    def touch(self, path: str, truncate: bool = True, **kwargs: Any) -> None:
        path = self._strip_protocol(path)
        if truncate or not self.volume.exists(path):
            self.volume.write_bytes(path, b"")

    def rm_file(self, path: str) -> None:
        self.volume.remove(self._strip_protocol(path), recursive=True)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rmdir(self, path: str) -> None:
        self.volume.remove(self._strip_protocol(path))

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        paths = path if isinstance(path, list) else [path]
        for p in paths:
            stripped = self._strip_protocol(p)
            if self.volume.exists(stripped):
                self.volume.remove(stripped, recursive=recursive)
        self.invalidate_cache()
