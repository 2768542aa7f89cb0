"""One kernel mount: pyfuse3's init, main loop and close, and asking the kernel for what it caches.

`KernelSession` is entered once the filesystem is ready to answer (pyfuse3.init) and left after its
main loop returned (pyfuse3.close). Its main loop, `serve`, returns when the kernel unmounted us, or
after `terminate` (a signal): then we are still mounted, and leaving the session detaches the mount,
so that no process waits on a dead mount while everything is committed. What runs around a session
(the store, the filesystem, the uploader, the control server) is wired in `vfs.compose`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path

import pyfuse3
import trio

from vfs.fuse.operations import Operations, set_read_ahead

log = logging.getLogger(__name__)


class KernelSession:
    """The FUSE mount of `ops` at `mountpoint` (a context manager: mounted while entered)."""

    def __init__(self, ops: Operations, mountpoint: Path, *, fsname: str) -> None:
        self.ops = ops
        self.mountpoint = mountpoint
        self.options = {f"fsname={fsname}", "subtype=vfs", "default_permissions", "allow_other", "noatime"}
        self._terminated = False
        self._kernel_unmounted = False

    def __enter__(self) -> KernelSession:
        pyfuse3.init(self.ops, str(self.mountpoint), self.options)
        return self

    def __exit__(self, *exc: object) -> None:
        pyfuse3.close(unmount=not self._kernel_unmounted)

    async def serve(self) -> None:
        """Answer the kernel until it unmounted us or `terminate` was called."""
        await pyfuse3.main()
        self._kernel_unmounted = not self._terminated

    def terminate(self) -> None:
        """Have `serve` return (the mount stays until the session is left)."""
        self._terminated = True
        pyfuse3.terminate()

    async def write_back(self, paths: list[bytes]) -> None:
        """Have the kernel send what it caches for `paths` (files open for writing): see `_write_back`."""
        # From a thread: the write-back it causes comes to this very loop as WRITE requests.
        # Abandoned on cancel: a stop signal must not wait for a write-back that needs this loop.
        await trio.to_thread.run_sync(_write_back, str(self.mountpoint), paths, self.ops.writing_back,
                                      abandon_on_cancel=True)

    async def wait_answering(self) -> None:
        """Return once the mount answers (`serve` runs), with the kernel's read-ahead raised."""
        # Stat it from a thread: the loop that answers it is ours.
        await trio.to_thread.run_sync(os.stat, self.mountpoint)
        await trio.to_thread.run_sync(set_read_ahead, str(self.mountpoint))


def _write_back(mountpoint: str, paths: list[bytes], writing_back: set[int]) -> None:
    """Have the kernel send the dirty pages it caches for our files, and wait until they arrived.

    syncfs(2) starts write-back of the whole mount but on Linux 6.18 returns before a FUSE mount's
    data has reached us (docs/design.md); fsync(2) of a file waits for every write to its inode. So:
    syncfs to start all at once, then fsync each file open for writing through a descriptor of our
    own (Operations answers our own FSYNC at once: the WRITEs are what matter here). A file renamed
    or deleted meanwhile is skipped.
    """
    fd = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:  # through ctypes, which releases the GIL (pyfuse3.syncfs holds it)
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), mountpoint)
    finally:
        os.close(fd)
    root = os.fsencode(mountpoint)
    me = threading.get_native_id()
    writing_back.add(me)
    try:
        _fsync_each(root, paths)
    finally:
        writing_back.discard(me)


def _fsync_each(root: bytes, paths: list[bytes]) -> None:
    for path in paths:
        try:
            fd = os.open(root + b"/" + path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            log.debug("write-back of %r skipped: %s", path, e)
            continue
        try:
            os.fsync(fd)
        except OSError as e:
            log.debug("write-back of %r failed: %s", path, e)
        finally:
            os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)
