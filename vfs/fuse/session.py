"""One kernel mount: pyfuse3's init, main loop and close, and asking the kernel for what it caches.

`KernelSession` is entered once the filesystem is ready to answer (pyfuse3.init) and left after its
main loop returned (pyfuse3.close). Its main loop, `serve`, returns when the kernel unmounted us, or
after `terminate` (a signal): then we are still mounted, and leaving the session detaches the mount,
so that no process waits on a dead mount while everything is committed. What runs around a session
(the store, the filesystem, the uploader, the control server) is wired in `vfs.compose`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyfuse3
import trio

from vfs.fuse.kernel import READ_AHEAD, WRITE_SHARE, tune_bdi
from vfs.fuse.operations import Operations
from vfs.fuse.stats import RequestStats

log = logging.getLogger(__name__)


class KernelSession:
    """The FUSE mount of `ops` at `mountpoint` (a context manager: mounted while entered)."""

    def __init__(self, ops: Operations, mountpoint: Path, *, fsname: str, read_only: bool = False) -> None:
        """`read_only`: the kernel refuses every write itself (EROFS), as for a follower's mount."""
        self.ops = ops
        self.mountpoint = mountpoint
        self.options = {f"fsname={fsname}", "subtype=vfs", "default_permissions", "allow_other", "noatime",
                        *(["ro"] if read_only else [])}
        self._bdi_settings = READ_AHEAD if read_only else READ_AHEAD | WRITE_SHARE
        self._terminated = False
        self._kernel_unmounted = False
        # Request counters for benchmarks (VFS_FUSE_STATS), written when the mount ends.
        self._stats = RequestStats.from_environment()
        if self._stats is not None:
            self._stats.wrap(ops)

    def __enter__(self) -> KernelSession:
        pyfuse3.init(self.ops, str(self.mountpoint), self.options)
        return self

    def __exit__(self, *exc: object) -> None:
        pyfuse3.close(unmount=not self._kernel_unmounted)
        if self._stats is not None:
            self._stats.dump()

    async def serve(self) -> None:
        """Answer the kernel until it unmounted us or `terminate` was called."""
        await pyfuse3.main()
        self._kernel_unmounted = not self._terminated

    def terminate(self) -> None:
        """Have `serve` return (the mount stays until the session is left)."""
        self._terminated = True
        pyfuse3.terminate()

    async def wait_answering(self) -> None:
        """Return once the mount answers (`serve` runs), with the kernel's limits for it raised."""
        # Stat it from a thread: the loop that answers it is ours.
        await trio.to_thread.run_sync(os.stat, self.mountpoint)
        await trio.to_thread.run_sync(tune_bdi, str(self.mountpoint), self._bdi_settings)
