"""KernelCache: what the daemon asks of the kernel's caches of its mount.

Built before the FileSystem, which is given `invalidate` (drop an inode's cached pages and attributes
when its content changed by a path other than the kernel's own writes) and `write_back` (have the
kernel send the writes it caches), and before Operations, which answers at once the FSYNCs of the
daemon's own write-back threads (`writing_back`).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pyfuse3
import trio

from vfs.fsutil import syncfs
from vfs.types import InodeNo

log = logging.getLogger(__name__)


# What the kernel is told of the mount's backing device (/sys/class/bdi/MAJOR:MINOR), as root only:
# - read_ahead_kb: 1 MiB read requests instead of 128 KiB;
# - for a writable mount, max_ratio then min_ratio (never above max_ratio): the share, in percent of the
#   system's dirty-page limit, of writes the kernel may hold for the mount before it sends them and slows
#   the writer. FUSE's 0-1 guards against daemons it cannot trust; this one takes every page in the end,
#   and a close or fsync still waits for all of them. Within those bounds a device's share follows its
#   recent write-back, so without a minimum a fresh mount gets next to none. With too little, a random
#   writer's pages are sent one or two at a time as it goes (a request each); with enough, together, in
#   runs, at the fsync or close. The minimums of all devices may not sum past 100: past that, FUSE's.
READ_AHEAD = {"read_ahead_kb": "1024"}
WRITE_SHARE = {"max_ratio": "20", "min_ratio": "5"}


def bdi_dir(mountpoint: str | Path) -> Path:
    """The sysfs folder of the mount's backing device (its root is stat'ed: call from a thread)."""
    dev = os.stat(mountpoint).st_dev
    return Path("/sys/class/bdi") / f"{os.major(dev)}:{os.minor(dev)}"


def tune_bdi(mountpoint: str, settings: dict[str, str]) -> None:
    """Write `settings` for the mount at `mountpoint`, in order; one the kernel refuses stays as it was
    (logged). Stats the mount: call from a thread."""
    folder = bdi_dir(mountpoint)
    for name, value in settings.items():
        try:
            (folder / name).write_text(value)
        except OSError as e:
            log.info("could not set %s of %s: %s", name, mountpoint, e)


class KernelCache:
    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        # Threads of this daemon making the kernel write back (`_write_back`), by native id: a
        # FUSE request names the calling thread, not its process. Their FSYNCs are answered at once.
        self.writing_back: set[int] = set()

    @staticmethod
    def invalidate(ino: InodeNo) -> None:
        """Make the kernel drop what it caches of `ino` (pages and attributes)."""
        try:
            pyfuse3.invalidate_inode(ino)
        except OSError:
            pass  # the kernel does not know the inode: nothing cached

    @staticmethod
    async def forget_names(names: list[tuple[InodeNo, bytes, InodeNo]]) -> None:
        """Make the kernel drop its entries (directory, name, deleted) of names removed or added by a path
        other than its own requests (a restore): it would show them as they were for as long as their
        entry timeout. `deleted`, the inode a removed name named, tells inotify watchers that the name is
        gone; 0 for an added name, which the kernel may remember as missing."""
        if names:
            # From a thread: invalidate_entry blocks until requests on those directories are answered,
            # by this very loop.
            await trio.to_thread.run_sync(_forget_names, names, abandon_on_cancel=True)

    async def write_back(self, paths: list[bytes]) -> None:
        """Have the kernel send what it caches for `paths` (files open for writing): see `_write_back`."""
        # From a thread: the write-back it causes comes to this very loop as WRITE requests.
        # Abandoned on cancel: a stop signal must not wait for a write-back that needs this loop.
        await trio.to_thread.run_sync(_write_back, str(self.mountpoint), paths, self.writing_back,
                                      abandon_on_cancel=True)


def _forget_names(names: list[tuple[InodeNo, bytes, InodeNo]]) -> None:
    for parent, name, ino in names:
        try:
            pyfuse3.invalidate_entry(parent, name, deleted=ino)
        except OSError:
            pass  # the kernel has no such entry: nothing cached


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
        syncfs(fd)
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

