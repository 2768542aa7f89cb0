"""Snapshots as the commands see them: names checked, defaults given, and the tree's totals.

A snapshot is a name for a commit (see the catalog); taking one is O(1). The daemon flushes open
files before calling `take`, so data written but not yet closed is part of the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfs.catalog import Catalog, Snapshot
from vfs.errors import Exists
from vfs.fs.history import check_snapshot_name, default_snapshot_names, format_time


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    commit_no: int
    time_ns: int
    files: int  # regular files in the snapshot's tree (hard links count once)
    bytes: int  # their total logical size

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "commit": self.commit_no, "time": format_time(self.time_ns),
                "time_ns": self.time_ns, "files": self.files, "bytes": self.bytes}


def take(catalog: Catalog, name: str | None = None) -> Snapshot:
    """Name the current tree `name` (checked), or by the current time when `name` is None (a name no
    snapshot has: see `default_snapshot_names`; taking a default-named snapshot never fails for its name).

    Raises:
        UsageError: `name` could be read as something else (a number, a time) or holds '/' or '@'.
        Exists: a snapshot of that name exists.
    """
    if name is not None:
        check_snapshot_name(name)
        return catalog.create_snapshot(name)
    names = default_snapshot_names()
    while True:
        try:
            return catalog.create_snapshot(next(names))
        except Exists:
            continue  # a snapshot of this second exists already: a finer name


def delete(catalog: Catalog, name: str) -> None:
    """Delete snapshot `name` (NotFound if there is none); the history it named stays."""
    catalog.delete_snapshot(name)


def describe(catalog: Catalog) -> list[SnapshotInfo]:
    """Every snapshot, oldest first, with the number and total size of its files."""
    out = []
    for s in catalog.snapshots():
        files, size = catalog.tree_stats(s.commit_no)
        out.append(SnapshotInfo(s.name, s.commit_no, s.time_ns, files, size))
    return out
