"""KernelCache: what the daemon asks of the kernel's caches of its mount.

Built before the FileSystem, which is given `invalidate` (drop an inode's cached pages and attributes
when its content changed by a path other than the kernel's own writes), and before Operations, which
answers at once the FSYNCs of the daemon's own write-back threads (`writing_back`).
"""

from __future__ import annotations

import logging

import pyfuse3

from vfs.types import InodeNo

log = logging.getLogger(__name__)


class KernelCache:
    def __init__(self) -> None:
        # Threads of this daemon making the kernel write back (daemon._write_back), by native id: a
        # FUSE request names the calling thread, not its process. Their FSYNCs are answered at once.
        self.writing_back: set[int] = set()

    @staticmethod
    def invalidate(ino: InodeNo) -> None:
        """Make the kernel drop what it caches of `ino` (pages and attributes)."""
        try:
            pyfuse3.invalidate_inode(ino)
        except OSError:
            pass  # the kernel does not know the inode: nothing cached
