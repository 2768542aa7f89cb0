"""The types fs/ hands to its callers (the FUSE adapter, the control server): its API, not the catalog's.

`Attr` is an inode's attributes as `FileSystem` reports them (for a file being written, its size and
mtime are the staging file's); `Snapshot` is a snapshot `FileSystem.snapshot` took; `StatFs` is what
statfs(2) reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfs.catalog import Snapshot
from vfs.types import Attr

__all__ = ["Attr", "Snapshot", "StatFs"]


@dataclass(frozen=True)
class StatFs:
    block_size: int
    blocks: int
    blocks_free: int
    blocks_avail: int
    files: int
    files_free: int
    name_max: int
