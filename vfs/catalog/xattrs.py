"""Extended attributes, versioned like directory entries (each row holds for a range of commits)."""

from __future__ import annotations

from vfs.catalog.schema import LIVE, holds
from vfs.catalog.states import States
from vfs.errors import Exists, NoData
from vfs.types import InodeNo


class Xattrs(States):
    """Extended attributes of inodes; a change is a commit (and a new ctime)."""

    def getxattr(self, ino: InodeNo, name: bytes, at: int = LIVE) -> bytes:
        row = self._one(
            "SELECT value, commit_to FROM xattrs WHERE ino = ? AND name = ? AND commit_from <= ?"
            " ORDER BY commit_from DESC LIMIT 1",
            (ino, name, at),
        )
        if row is None or not holds(int(row[1]), at):
            raise NoData(f"no attribute {name!r}")
        return bytes(row[0])

    def xattr_name_used(self, name: bytes) -> bool:
        """Whether any inode has, or ever had, an attribute `name`. The kernel asks for
        security.capability before every write(2): this answers it without a query per write.
        Remembered only by the holder of the store lock (the only writer), which updates it."""
        if name in self._unused_xattr_names:
            return False
        used = self._one("SELECT 1 FROM xattrs WHERE name = ? LIMIT 1", (name,)) is not None
        if not used and self.cache_live_attrs:
            self._unused_xattr_names.add(name)
        return used

    def listxattr(self, ino: InodeNo, at: int = LIVE) -> list[bytes]:
        rows = self._all(
            "SELECT name FROM xattrs WHERE ino = ? AND commit_to > ? AND commit_from <= ? ORDER BY name",
            (ino, min(at, LIVE - 1), at),  # at LIVE, rows with commit_to = LIVE hold
        )
        return [bytes(r[0]) for r in rows]

    def setxattr(self, ino: InodeNo, name: bytes, value: bytes, *, create: bool = False, replace: bool = False) -> None:
        self._unused_xattr_names.discard(name)  # before: a reader between here and the commit asks SQLite
        with self._write(exact=True) as c:
            row = self._db.execute(
                "SELECT rowid FROM xattrs WHERE ino = ? AND name = ? AND commit_to = ?", (ino, name, LIVE)
            ).fetchone()
            if row and create:
                raise Exists(f"attribute {name!r} exists")
            if not row and replace:
                raise NoData(f"no attribute {name!r}")
            if row:
                self._db.execute("UPDATE xattrs SET commit_to = ? WHERE rowid = ?", (c.no, row[0]))
            self._db.execute(
                "INSERT INTO xattrs(ino, name, value, commit_from, commit_to) VALUES (?,?,?,?,?)",
                (ino, name, value, c.no, LIVE),
            )
            self._change_state(c, ino, ctime_ns=c.time_ns)

    def removexattr(self, ino: InodeNo, name: bytes) -> None:
        with self._write(exact=True) as c:
            n = self._db.execute(
                "UPDATE xattrs SET commit_to = ? WHERE ino = ? AND name = ? AND commit_to = ?", (c.no, ino, name, LIVE)
            ).rowcount
            if n == 0:
                raise NoData(f"no attribute {name!r}")
            self._change_state(c, ino, ctime_ns=c.time_ns)
