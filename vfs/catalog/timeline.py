"""Commits, their times, and snapshots (a snapshot is a name for one commit: the tree as of then)."""

from __future__ import annotations

from vfs.catalog.rows import Commit, Snapshot
from vfs.catalog.schema import LIVE
from vfs.catalog.transactions import Transactions
from vfs.errors import Exists, NotFound
from vfs.types import CommitNo, InodeNo


class Timeline(Transactions):
    """The commit log and the snapshots that name commits."""

    def head(self) -> Commit:
        row = self._one("SELECT commit_no, time_ns FROM commits ORDER BY commit_no DESC LIMIT 1")
        assert row is not None
        return Commit(CommitNo(int(row[0])), int(row[1]))

    def commit_at_time(self, time_ns: int) -> CommitNo | None:
        """The last commit made at or before `time_ns` (None if the store is younger)."""
        row = self._one(
            "SELECT commit_no FROM commits WHERE time_ns <= ? ORDER BY time_ns DESC, commit_no DESC LIMIT 1",
            (time_ns,),
        )
        return CommitNo(int(row[0])) if row else None

    def changed_since(self, commit: int) -> tuple[set[InodeNo], list[tuple[InodeNo, bytes, InodeNo]]]:
        """What the commits after `commit` changed: the inodes given a new state (content, attributes, a
        directory's entries) and the names (parent, name, inode) that began or ended. What a follower's
        kernel must forget after a refresh; one pass over each table, off the event loop."""
        inos = {InodeNo(r[0]) for r in self._all("SELECT DISTINCT ino FROM inode_states WHERE commit_from > ?",
                                                   (commit,))}
        names = [(InodeNo(p), bytes(n), InodeNo(i)) for p, n, i in self._all(
            "SELECT parent, name, ino FROM dirents WHERE commit_from > ? OR (commit_to > ? AND commit_to != ?)",
            (commit, commit, LIVE))]
        return inos, names

    def create_snapshot(self, name: str) -> Snapshot:
        """Name the current tree. O(1): one row; the snapshot's tree is the tree at its commit."""
        with self._write() as c:
            if self._db.execute("SELECT 1 FROM snapshots WHERE name = ?", (name,)).fetchone():
                raise Exists(f"snapshot {name!r} exists already")
            self._db.execute("INSERT INTO snapshots(name, commit_no, time_ns) VALUES (?, ?, ?)",
                             (name, c.no, c.time_ns))
            return Snapshot(name, c.no, c.time_ns)

    def delete_snapshot(self, name: str) -> None:
        """Delete the snapshot named `name` (NotFound if there is none)."""
        with self._write():
            if not _is_text(name) or self._db.execute("DELETE FROM snapshots WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"no snapshot named {name!r}")

    def snapshot(self, name: str) -> Snapshot | None:
        """The snapshot named `name`; None also for a name that is not UTF-8 text (raw path bytes)."""
        if not _is_text(name):
            return None
        row = self._one("SELECT name, commit_no, time_ns FROM snapshots WHERE name = ?", (name,))
        return Snapshot(*row) if row else None

    def snapshot_count(self) -> int:
        return int(self._one("SELECT count(*) FROM snapshots")[0])

    def snapshots(self) -> list[Snapshot]:
        return [Snapshot(*r) for r in self._all("SELECT name, commit_no, time_ns FROM snapshots ORDER BY commit_no")]


def _is_text(name: str) -> bool:
    """Whether `name` can be a snapshot name: snapshot names are UTF-8 TEXT, and a str decoded from a
    path's raw bytes (surrogate escapes) names none (SQLite could not even bind it)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True
