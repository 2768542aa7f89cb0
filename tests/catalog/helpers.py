"""Catalog helpers for tests only: what no production code asks the catalog, done through its rows."""

from __future__ import annotations

from vfs.catalog import Catalog, Snapshot
from vfs.errors import Exists, NotFound
from vfs.types import ROOT_INO, InodeNo


def parent_of(cat: Catalog, ino: InodeNo) -> InodeNo | None:
    """The directory that holds the live name of (directory) inode `ino`; None once it has none."""
    path = cat.path_of(ino)
    if path is None:
        return None
    parent: InodeNo | None = ROOT_INO
    for name in path.split(b"/")[:-1]:
        assert parent is not None
        parent = cat.lookup(parent, name)
    return parent


def inode_exists(cat: Catalog, ino: InodeNo) -> bool:
    """Whether inode `ino` was ever created (inodes are never deleted, even without names)."""
    try:
        cat.lineage(ino)
    except NotFound:
        return False
    return True


def commit_time(cat: Catalog, no: int) -> int | None:
    """When commit `no` was made (None if there is no such commit)."""
    row = cat._one("SELECT time_ns FROM commits WHERE commit_no = ?", (no,))
    return int(row[0]) if row else None


def create_snapshot_at(cat: Catalog, name: str, time_ns: int) -> Snapshot:
    """Name the current tree, recording `time_ns` as the snapshot's time (retention tests need snapshots
    taken at chosen times; `Catalog.create_snapshot` records now)."""
    with cat._write() as c:
        if cat._db.execute("SELECT 1 FROM snapshots WHERE name = ?", (name,)).fetchone():
            raise Exists(f"snapshot {name!r} exists already")
        cat._db.execute("INSERT INTO snapshots(name, commit_no, time_ns) VALUES (?, ?, ?)", (name, c.no, time_ns))
        return Snapshot(name, c.no, time_ns)
