"""The open-file table: what FileSystem holds in memory about open files.

A *handle* (`Handle`, named by its number `fh`) is one open() of an inode. An inode with handles or a
staging file has a `Live` record, which counts its handles and holds its `Staging` record: the local
file with its whole current content while it is being written (see `vfs.fs.staging`). A `Live` record
is dropped once nothing needs it (`Committer.maybe_forget`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import trio

from vfs.catalog import Version
from vfs.types import InodeNo


@dataclass
class Staging:
    """The local file holding an inode's current content while it is being written."""

    fd: int
    path: Path
    size: int
    mtime_ns: int
    dirty: bool = False
    dirty_since: float = 0.0
    fsynced_dir: bool = False
    fsynced: bool = False  # fsync(2) was asked: its version must commit durably (WAL fsync'd)
    changed_ns: int = 0  # when the content last changed (now_ns's clock): the time of its version
    unsynced: int = 0  # bytes written since the disk was last asked to write the file (StagingFiles.wrote)


@dataclass
class Live:
    """In-memory state of an inode that has handles or a staging file."""

    ino: InodeNo
    opens: int = 0
    writers: int = 0
    staging: Staging | None = None
    committing: trio.Event | None = None  # set while the committer ingests the staging file
    materializing: trio.Lock = field(default_factory=trio.Lock)
    busy: int = 0  # operations holding this state across an await without a handle (truncate by path)
    deleted: bool = False  # unlinked, its last name gone: uncommitted content is dropped, not committed


@dataclass
class Handle:
    ino: InodeNo
    writable: bool
    version: Version | None = None  # committed content read when there is no staging file
    pinned: bool = False  # a history view: `version` never changes


class OpenFiles:
    """The table of handles by number and of `Live` records by inode."""

    def __init__(self) -> None:
        self.live: dict[InodeNo, Live] = {}
        self.handles: dict[int, Handle] = {}
        self._next_fh = 1

    def get_live(self, ino: InodeNo) -> Live:
        """The inode's `Live` record, made if it has none."""
        live = self.live.get(ino)
        if live is None:
            live = self.live[ino] = Live(ino)
        return live

    def add(self, handle: Handle) -> int:
        """Number a new handle."""
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = handle
        return fh
