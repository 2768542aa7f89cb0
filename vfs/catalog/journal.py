"""The journal of batched deletes: what a killed process had removed but not committed yet.

Deletes (unlink, rmdir) are cheap to make in a batch and dear to commit one by one (`rm -rf` spent most
of its time in a commit per name). So the catalog may keep a *batch* open: a write transaction holding
the deletes of the last few milliseconds, which every other write commits first. For such a delete to
survive `kill -9` of the daemon as a committed one does, each is first appended to this journal
(`catalog.db-deletes`, one `write(2)`, which survives the process in the page cache): the next opener
holding the store lock replays what no commit recorded.

Format: a header, the number of the last commit before the batch (u64 LE); then one record per delete:
parent inode (u64), inode (u64), rmdir (u8), name length (u16), name, all little-endian. The batch was
committed iff the catalog's last commit number is past the header's: no other commit can come between
(the batch holds SQLite's write lock, and every other write of its connection commits it first).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from vfs.fsutil import PRIVATE_FILE
from vfs.types import InodeNo

_HEADER = struct.Struct("<Q")
_RECORD = struct.Struct("<QQBH")


@dataclass(frozen=True)
class Delete:
    """One journalled delete: `name` in `parent`, which pointed to `ino`."""

    parent: InodeNo
    name: bytes
    ino: InodeNo
    rmdir: bool


class DeleteJournal:
    """The journal file of one catalog's open batch. Not thread-safe: the catalog's lock guards it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def begin(self, last_commit: int) -> None:
        """Start the journal of a new batch, which follows commit `last_commit`."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, _HEADER.pack(last_commit), 0)
        self._end = _HEADER.size

    def add(self, delete: Delete) -> None:
        """Journal a delete of the open batch (before the kernel is told it happened)."""
        assert self._fd is not None
        record = _RECORD.pack(delete.parent, delete.ino, delete.rmdir, len(delete.name)) + delete.name
        written = os.pwrite(self._fd, record, self._end)
        if written < len(record):
            os.ftruncate(self._fd, self._end)  # no torn record; the next write would fail with ENOSPC
            raise OSError(28, "no space left for the delete journal")
        self._end += written

    def clear(self) -> None:
        """The batch was committed: nothing to replay."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_journal(path: Path) -> tuple[int, list[Delete]] | None:
    """The header and the whole records of a journal file; None when there is none (or it is empty)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _HEADER.size:
        return None
    (last_commit,) = _HEADER.unpack_from(data)
    deletes: list[Delete] = []
    pos = _HEADER.size
    while pos + _RECORD.size <= len(data):
        parent, ino, rmdir, length = _RECORD.unpack_from(data, pos)
        name = data[pos + _RECORD.size : pos + _RECORD.size + length]
        if len(name) < length:
            break  # a torn last record: its delete was never acknowledged
        deletes.append(Delete(InodeNo(parent), name, InodeNo(ino), bool(rmdir)))
        pos += _RECORD.size + length
    return last_commit, deletes
