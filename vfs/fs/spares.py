"""Emptied staging files, kept for reuse instead of being deleted and created again.

Every new file of a mount gets a staging file, deleted once its content is committed. On ext4
without a journal (as on these VMs), the inode allocator then checks each recently deleted inode
of a group one by one before it takes a new one: after a few thousand small files a create cost
ten times more. Renaming a spare into place allocates no inode (and saves work on any filesystem).

The trio loop only renames (a staging name must come and go in request order). Emptying a discarded
file (ftruncate, which frees its blocks: the dearest step, ~0.3 ms) happens in a thread (`empty`), and
the spare keeps its descriptor open, so that taking it needs no open(2) either.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from pathlib import Path

from vfs.fsutil import PRIVATE_FILE, private_dir

_KEEP = 256  # spares kept at most: enough for a burst of small files between two commits
_WAITING_MAX = 1024  # discarded files waiting to be emptied, beyond which `discard` empties them itself


class Spares:
    def __init__(self, staging: Path) -> None:
        self.dir = staging / "spare"
        private_dir(self.dir)
        self._lock = threading.Lock()  # `_free` and `_waiting` are shared with the emptying thread
        # Spares left by an earlier run may still hold content (a kill between rename and truncate):
        # without a descriptor (None), `create` opens them with O_TRUNC.
        self._free: list[tuple[Path, int | None]] = [(p, None) for p in sorted(self.dir.iterdir())]
        names = [int(p.name) for p, _ in self._free if p.name.isdigit()]
        self._names = itertools.count(max(names, default=0) + 1)
        # Discarded files under their spare names, not emptied yet: (path, descriptor).
        self._waiting: list[tuple[Path, int]] = []

    def create(self, path: Path) -> int:
        """Open an empty file at `path` (read-write), a renamed spare when there is one."""
        while True:
            with self._lock:
                if not self._free:
                    break
                spare, fd = self._free.pop()
            try:
                os.rename(spare, path)
            except FileNotFoundError:
                if fd is not None:
                    os.close(fd)
                continue
            if fd is not None:
                return fd  # emptied by `empty` already
            return os.open(path, os.O_RDWR | os.O_TRUNC | os.O_CLOEXEC)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)

    def discard(self, fd: int, path: Path) -> bool:
        """Take the file at `path` out of staging: kept as a spare (emptied later by `empty`), or
        deleted; True when `empty` has work.

        Renamed before it is emptied: a killed daemon must never leave an empty file under a
        staging name, which recovery would take for content truncated to nothing.
        """
        with self._lock:
            keep = len(self._free) + len(self._waiting) < _KEEP
        if keep:
            spare = self.dir / str(next(self._names))
            try:
                os.rename(path, spare)
            except OSError:
                pass
            else:
                with self._lock:
                    self._waiting.append((spare, fd))
                    backlog = len(self._waiting) > _WAITING_MAX
                if backlog:  # nobody empties them (no thread ran): do not hoard descriptors
                    self.empty()
                return True
        try:
            path.unlink(missing_ok=True)
        finally:
            os.close(fd)
        return False

    def empty(self) -> None:
        """Empty the discarded files and make them spares. Blocks: run in a thread."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        for spare, fd in waiting:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                os.close(fd)
                with contextlib.suppress(OSError):
                    spare.unlink()
                continue
            with self._lock:
                self._free.append((spare, fd))

    def close(self) -> None:
        """Empty what waits and close every spare's descriptor (the files stay, for the next run)."""
        self.empty()
        with self._lock:
            free, self._free = self._free, []
        for _, fd in free:
            if fd is not None:
                os.close(fd)
