"""Emptied staging files, kept for reuse instead of being deleted and created again.

Every new file of a mount gets a staging file, deleted once its content is committed. On ext4
without a journal (as on these VMs), the inode allocator then checks each recently deleted inode
of a group one by one before it takes a new one: after a few thousand small files a create cost
ten times more. Renaming a spare into place allocates no inode (and saves work on any filesystem).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

from vfs.fsutil import PRIVATE_FILE, private_dir

_KEEP = 256  # spares kept at most: enough for a burst of small files between two commits


class Spares:
    def __init__(self, staging: Path) -> None:
        self.dir = staging / "spare"
        private_dir(self.dir)
        # Spares left by an earlier run may still hold content (a kill between rename and truncate):
        # `create` truncates whatever it takes.
        self._free = sorted(self.dir.iterdir())
        names = [int(p.name) for p in self._free if p.name.isdigit()]
        self._names = itertools.count(max(names, default=0) + 1)

    def create(self, path: Path) -> int:
        """Open an empty file at `path` (read-write), a renamed spare when there is one."""
        while self._free:
            spare = self._free.pop()
            with contextlib.suppress(FileNotFoundError):
                os.rename(spare, path)
                return os.open(path, os.O_RDWR | os.O_TRUNC | os.O_CLOEXEC)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)

    def discard(self, fd: int, path: Path) -> None:
        """Close the file at `path` and take it out of staging: kept as a spare, or deleted.

        Renamed before it is emptied: a killed daemon must never leave an empty file under a
        staging name, which recovery would take for content truncated to nothing.
        """
        try:
            if len(self._free) < _KEEP:
                spare = self.dir / str(next(self._names))
                try:
                    os.rename(path, spare)
                except OSError:
                    pass
                else:
                    self._free.append(spare)
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, 0)  # frees its blocks; `create` truncates again anyway
                    return
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
