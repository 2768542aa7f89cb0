"""Helpers of the catalog tests: making files and content, observing the tree, and what only tests ask of a catalog."""

from __future__ import annotations

import stat
from typing import Any

from vfs.catalog import LIVE, Catalog, Snapshot
from vfs.errors import Exists, NotFound
from vfs.store import ChunkLocation, Ingested, codec
from vfs.types import ROOT_INO, InodeNo, PackNo

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755


def mkfile(cat: Catalog, parent: InodeNo, name: bytes) -> InodeNo:
    return cat.create(parent, name, FILE, 1000, 1000).ino


def mkdir(cat: Catalog, parent: InodeNo, name: bytes) -> InodeNo:
    return cat.create(parent, name, DIR, 1000, 1000).ino


def content(data: bytes) -> Ingested:
    """Ingested content with made-up pack locations (the catalog never reads packs)."""
    cid = codec.chunk_id(data)
    loc = ChunkLocation(cid, PackNo(1), 16, codec.RAW, len(data), len(data))
    return Ingested(len(data), codec.chunk_id(data), [(cid, len(data))] if data else [], [loc] if data else [])


def names(cat: Catalog, parent: InodeNo, at: int = LIVE) -> list[bytes]:
    return [e.name for e in cat.readdir(parent, at=at)]


def observe(cat: Catalog, at: int) -> dict[bytes, Any]:
    """Everything visible from the root at commit `at`, by path."""
    out: dict[bytes, Any] = {}

    def walk(ino: InodeNo, path: bytes) -> None:
        attr = cat.attr(ino, at)
        v = cat.version_at(ino, at)
        xattrs = {n: cat.getxattr(ino, n, at) for n in cat.listxattr(ino, at)}
        out[path] = (attr, v.hash if v else None, xattrs)
        if attr.is_dir:
            for e in cat.readdir(ino, at=at):
                assert cat.lookup(ino, e.name, at) == e.ino
                walk(e.ino, path + b"/" + e.name)

    walk(ROOT_INO, b"")
    return out


def dir_links(cat: Catalog, *dirs: InodeNo, at: int = LIVE) -> list[int]:
    return [cat.attr(d, at).nlink for d in dirs]


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
