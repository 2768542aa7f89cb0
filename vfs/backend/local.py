"""A backend in a local directory: for tests, and for a "remote" on another disk.

The object `a/b/c` is the file `ROOT/a/b/c`. A put writes a temporary file under `ROOT/.tmp`, fsyncs
it, renames it into place and fsyncs the folder, so a reader or a crash sees the old object or the
new one, whole. Folders left empty by a delete are removed. `.tmp` is reserved: no key may start
with it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from vfs.backend.base import Backend, check_key, check_range
from vfs.errors import BackendError, BackendNotFound, BackendUnavailable, UsageError
from vfs.fsutil import PRIVATE_DIR, durable_temp, fsync_path, private_dir

TMP_DIR = ".tmp"

# Failures of a disk that may be back soon (a network filesystem, a busy device).
_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE, errno.EBUSY}
_MISSING_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR}


class LocalBackend(Backend):
    """Objects as files under `root` (created if missing). Thread-safe."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).absolute()
        self.url = f"file://{self.root}"
        try:
            private_dir(self.root / TMP_DIR, parents=True)
        except OSError as e:
            raise self._error("open", "", e) from None

    def _path(self, key: str) -> Path:
        check_key(key)
        if key == TMP_DIR or key.startswith(TMP_DIR + "/"):
            raise UsageError(f"invalid object key {key!r}: {TMP_DIR}/ is reserved by the local backend")
        return self.root / key

    def _error(self, op: str, key: str, e: OSError) -> BackendError:
        what = f"{self.url}: {op} {key}".rstrip()
        if e.errno in _MISSING_ERRNOS:
            return BackendNotFound(f"{what}: no such object")
        cls = BackendUnavailable if e.errno in _TRANSIENT_ERRNOS else BackendError
        return cls(f"{what}: {e.strerror or e}")

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            tmp = durable_temp(self.root / TMP_DIR, data, prefix="put-")
            try:
                # A concurrent delete may remove a folder between our mkdir and rename: then again.
                for attempt in range(3):
                    self._makedirs(path.parent)
                    try:
                        os.rename(tmp, path)
                        break
                    except FileNotFoundError:
                        if attempt == 2:
                            raise
            except BaseException:
                os.unlink(tmp)
                raise
            fsync_path(path.parent, directory=True)
        except OSError as e:
            if e.errno in _MISSING_ERRNOS:  # a file where the key needs a folder, or the reverse
                raise BackendError(f"{self.url}: put {key}: a key is a prefix folder of another") from None
            raise self._error("put", key, e) from None

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        try:
            tmp = durable_temp(self.root / TMP_DIR, data, prefix="put-")
            try:
                self._makedirs(path.parent)
                try:
                    os.link(tmp, path)  # atomic, and fails if the name exists: rename would replace it
                except FileExistsError:
                    return False
            finally:
                os.unlink(tmp)
            fsync_path(path.parent, directory=True)
        except OSError as e:
            raise self._error("put", key, e) from None
        return True

    def _makedirs(self, folder: Path) -> None:
        """Create `folder` and its missing parents, each made durable in its parent."""
        if folder.is_dir():
            return
        self._makedirs(folder.parent)
        try:
            folder.mkdir(mode=PRIVATE_DIR)  # its objects are a store's data (put makes them 0600)
        except FileExistsError:
            return
        fsync_path(folder.parent, directory=True)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise self._error("get", key, e) from None

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                return os.pread(f.fileno(), length, offset) if length else b""
        except OSError as e:
            raise self._error("get", key, e) from None

    def head(self, key: str) -> int | None:
        path = self._path(key)
        try:
            st = path.stat()
        except OSError as e:
            if e.errno in _MISSING_ERRNOS:
                return None
            raise self._error("head", key, e) from None
        return st.st_size if path.is_file() else None

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        # Only the folder the prefix names needs walking: "packs/ab" walks ROOT/packs.
        folder = prefix.rpartition("/")[0]
        top = self.root / folder if folder else self.root
        keys: list[str] = []
        try:
            for dirpath, dirnames, filenames in os.walk(top, onerror=_raise):
                rel = os.path.relpath(dirpath, self.root)
                base = "" if rel == "." else rel + "/"
                if not base:
                    dirnames[:] = [d for d in dirnames if d != TMP_DIR]
                keys.extend(k for name in filenames if (k := base + name).startswith(prefix) and k > start_after)
        except OSError as e:
            if e.errno not in _MISSING_ERRNOS:
                raise self._error("list", prefix, e) from None
        keys.sort()
        yield from keys

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except OSError as e:
            if e.errno in _MISSING_ERRNOS:
                return
            raise self._error("delete", key, e) from None
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break  # not empty, or already gone
            parent = parent.parent


def _raise(e: OSError) -> None:
    raise e

