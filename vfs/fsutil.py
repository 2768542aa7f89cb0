"""Local-disk helpers shared by the layers (a leaf: imports nothing of vfs).

Everything under a store is its owner's alone (names and data alike): directories PRIVATE_DIR, files
PRIVATE_FILE. The CLI and the daemon also run with umask 077, but the library must not rely on its
caller's umask, so the code that creates paths in a store passes these modes itself.
"""

from __future__ import annotations

import ctypes
import logging
import os
import stat
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def fsync_path(path: Path | str, *, directory: bool = False) -> None:
    """fsync a file or, with `directory`, a directory (which makes its entries durable)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def start_write_back(fd: int) -> None:
    """Have the disk begin writing the file's dirty pages; returns without waiting for them (Linux's
    sync_file_range(2) with SYNC_FILE_RANGE_WRITE, which Python's os lacks). May block while the disk's
    queue is full: call from a thread."""
    _libc_call("sync_file_range", fd, ctypes.c_int64(0), ctypes.c_int64(0), _SYNC_FILE_RANGE_WRITE)


def syncfs(fd: int) -> None:
    """syncfs(2) of the filesystem holding `fd` (os lacks it; pyfuse3.syncfs holds the GIL throughout)."""
    _libc_call("syncfs", fd)


def _libc_call(name: str, *args: object) -> None:
    """Call libc's `name` through ctypes (which releases the GIL); -1 becomes OSError with its errno."""
    if getattr(_libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


_SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def private_dir(path: Path, *, parents: bool = False) -> None:
    """Make directory `path` (PRIVATE_DIR) unless it exists; with `parents`, its missing parents too (also
    PRIVATE_DIR, which Path.mkdir would not give them). Existing directories are left as they are."""
    if parents and not path.parent.exists():
        private_dir(path.parent, parents=True)
    try:
        path.mkdir(mode=PRIVATE_DIR)
    except FileExistsError:
        if not path.is_dir():
            raise


def durable_temp(folder: Path, data: bytes | bytearray | memoryview, *, prefix: str, suffix: str = "",
                 mode: int = PRIVATE_FILE) -> str:
    """A new temporary file in `folder` holding `data`, fsync'd, with exactly `mode`: to be renamed or
    linked into place (the caller removes it if that fails)."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    try:
        os.fchmod(fd, mode)  # exactly: mkstemp made it 0600, and the umask must not decide
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return name


def replace_file(path: Path, data: bytes | bytearray | memoryview, *, mode: int = PRIVATE_FILE) -> None:
    """Replace the file at `path` by one holding `data`, atomically and durably.

    A reader, or the machine after a crash, finds the old file or the new one, whole: `data` goes to a
    temporary file beside `path` (same directory, so same filesystem), which is fsync'd, renamed over
    `path`, and then the directory is fsync'd, so the rename itself survives a crash. The file gets
    exactly `mode` (PRIVATE_FILE unless said otherwise), whatever the umask.

    Writers may race (a lazy fetch and `vfs fetch` getting one pack): each has its own temporary file
    (`.NAME.XXXXXXXX.tmp`, hidden), and the last rename wins.
    """
    tmp = Path(durable_temp(path.parent, data, prefix=f".{path.name}.", suffix=".tmp", mode=mode))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent, directory=True)


def tighten(root: Path) -> list[Path]:
    """Take every permission of group and others from `root` and everything under it; the paths changed.

    Symlinks are not followed (a store holds none). A path that vanishes meanwhile is skipped.
    """
    changed = [root] if tighten_path(root) else []
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(folder) / name
            if tighten_path(path):
                changed.append(path)
    return changed


def tighten_path(path: Path) -> bool:
    """Take every permission of group and others from `path` (not followed if a symlink); whether it had any.

    A path that does not exist has none; one this process may not change (another user's) is logged.
    """
    try:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o077:
            return False
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)
    except FileNotFoundError:
        return False
    except OSError as e:
        log.warning("cannot make %s private to its owner: %s", path, e.strerror or e)
        return False
    return True
