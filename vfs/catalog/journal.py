"""The journal of batched tree edits: what a killed process had changed but not committed yet.

Tree edits (create, mkdir, link, unlink, rmdir, rename, chmod/chown/utimes) are cheap to make in a
batch and dear to commit one by one (`rm -rf`, `tar xf` and a burst of creates spent most of their
catalog time in a commit per request). So the catalog may keep a *batch* open: a write transaction
holding the edits of the last few milliseconds, which every other write commits first. For such an
edit to survive `kill -9` of the daemon as a committed one does, each is first appended to this journal
(`catalog.db-edits`, one `write(2)`, which survives the process in the page cache): the next opener
holding the store lock replays what no commit recorded.

Format: a header, the number of the last commit before the batch (u64 LE); then one record per edit:
parent inode (u64), inode (u64), kind (u8), name length (u16), name; an edit of kind 2 or more then has
its arguments: a count (u8), then each one a tag (u8: 0 none, 1 an i64, 2 bytes with a u16 length) and
its value. All little-endian. What each kind's fields mean is `Edit`'s. The batch was committed iff the
catalog's last commit number is past the header's: no other commit can come between (the batch holds
SQLite's write lock, and every other write of its connection commits it first). Deletes were the only
kinds once (their kind byte was "rmdir"), in `catalog.db-deletes`: such a file is read as this one.
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from vfs.fsutil import PRIVATE_FILE
from vfs.types import InodeNo

_HEADER = struct.Struct("<Q")
_RECORD = struct.Struct("<QQBH")
_COUNT = struct.Struct("<B")
_INT = struct.Struct("<Bq")
_BYTES = struct.Struct("<BH")
_NONE, _I64, _BYTES_TAG = 0, 1, 2

Arg = int | bytes | None


class Kind(enum.IntEnum):
    """What an edit does; the value is its kind byte in the journal."""

    UNLINK = 0  # name in parent, which pointed to ino
    RMDIR = 1  # likewise, a directory
    CREATE = 2  # name in parent, made as ino; args: mode, uid, gid, rdev, symlink target
    LINK = 3  # name in parent, a new name of ino
    RENAME = 4  # name in parent (ino 0); args: new parent, new name, noreplace, exchange
    SET_ATTR = 5  # of ino (parent 0, no name); args: mode, uid, gid, atime_ns, mtime_ns


@dataclass(frozen=True)
class Edit:
    """One journalled edit of the tree: see `Kind` for what its fields hold."""

    kind: Kind
    parent: InodeNo
    name: bytes
    ino: InodeNo
    args: tuple[Arg, ...] = ()


class EditJournal:
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

    def add(self, edit: Edit) -> None:
        """Journal an edit of the open batch (before the kernel is told it happened)."""
        assert self._fd is not None
        record = _encode(edit)
        written = os.pwrite(self._fd, record, self._end)
        if written < len(record):
            os.ftruncate(self._fd, self._end)  # no torn record; the next write would fail with ENOSPC
            raise OSError(28, "no space left for the edit journal")
        self._end += written

    def clear(self) -> None:
        """The batch was committed: nothing to replay."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _encode(edit: Edit) -> bytes:
    parts = [_RECORD.pack(edit.parent, edit.ino, edit.kind, len(edit.name)), edit.name]
    if edit.kind >= Kind.CREATE:
        parts.append(_COUNT.pack(len(edit.args)))
        for arg in edit.args:
            if arg is None:
                parts.append(bytes([_NONE]))
            elif isinstance(arg, bytes):
                parts += [_BYTES.pack(_BYTES_TAG, len(arg)), arg]
            else:
                parts.append(_INT.pack(_I64, arg))
    return b"".join(parts)


def read_journal(path: Path) -> tuple[int, list[Edit]] | None:
    """The header and the whole records of a journal file; None when there is none (or it is empty)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _HEADER.size:
        return None
    (last_commit,) = _HEADER.unpack_from(data)
    edits: list[Edit] = []
    pos = _HEADER.size
    while pos < len(data):
        try:
            edit, pos = _decode(data, pos)
        except (struct.error, ValueError):
            break  # a torn last record: its edit was never acknowledged
        edits.append(edit)
    return last_commit, edits


def _decode(data: bytes, pos: int) -> tuple[Edit, int]:
    """The record at `pos` and where the next one starts; struct.error or ValueError when it is cut short."""
    parent, ino, kind, length = _RECORD.unpack_from(data, pos)
    name, pos = _take(data, pos + _RECORD.size, length)
    args: list[Arg] = []
    if kind >= Kind.CREATE:
        (count,) = _COUNT.unpack_from(data, pos)
        pos += _COUNT.size
        for _ in range(count):
            tag = data[pos] if pos < len(data) else None
            if tag == _I64:
                args.append(_INT.unpack_from(data, pos)[1])
                pos += _INT.size
            elif tag == _BYTES_TAG:
                (_, n) = _BYTES.unpack_from(data, pos)
                arg, pos = _take(data, pos + _BYTES.size, n)
                args.append(arg)
            elif tag == _NONE:
                args.append(None)
                pos += 1
            else:
                raise ValueError("no argument here")
    return Edit(Kind(kind), InodeNo(parent), name, InodeNo(ino), tuple(args)), pos


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(data):
        raise ValueError("cut short")
    return data[pos : pos + n], pos + n
