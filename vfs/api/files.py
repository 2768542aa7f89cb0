"""File objects of the API: reading one version (seekable, range reads fetch only the chunks they
cover), and writing a new one (buffered in a private temporary file, put when closed)."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from vfs.catalog import Version
from vfs.repository import Repository

BUFFER = 1 << 20  # bytes read from the store at once by a buffered reader (chunks are ~640 KiB on average)


class VersionReader(io.RawIOBase):
    """The content of one version, read at any offset: each read asks the store for the chunks that
    cover it (vfs.store.reader.ContentReader), so a read deep into a large file reads little."""

    def __init__(self, repo: Repository, version: Version | None, name: str) -> None:
        super().__init__()
        self._repo = repo
        self._version = version
        self.name = name
        self._pos = 0

    @property
    def size(self) -> int:
        return 0 if self._version is None else self._version.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}.get(whence)
        if base is None:
            raise ValueError(f"invalid whence {whence}")
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._version is None or self._pos >= self.size:
            return 0
        data = self._repo.read(self._version, self._pos, min(len(buffer), self.size - self._pos))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def readall(self) -> bytes:
        if self._version is None or self._pos >= self.size:
            return b""
        if self._pos == 0:  # the whole content: decoded in parallel, chunk by chunk
            data = b"".join(self._repo.iter_content(self._version))
        else:
            data = self._repo.read(self._version, self._pos, self.size - self._pos)
        self._pos += len(data)
        return data


def reader(repo: Repository, version: Version | None, name: str) -> io.BufferedReader:
    return io.BufferedReader(VersionReader(repo, version, name), buffer_size=BUFFER)


class NewVersionWriter(io.BufferedWriter):
    """A file being written: a private temporary file until `close()`, which puts it (`commit(path)`);
    an exception inside `with` discards it instead."""

    def __init__(self, name: str, commit: Callable[[Path], object]) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="vfs-put-"))
        self._path = self._dir / "content"
        super().__init__(io.FileIO(self._path, "w"))
        self.path = name  # the volume path it will have
        self._commit = commit
        self._discard = False

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None,
                 ) -> None:
        self._discard = kind is not None
        super().__exit__(kind, value, tb)

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
            if not self._discard:
                self._commit(self._path)
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
