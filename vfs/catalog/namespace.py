"""Reading the tree: names, directory listings and attributes of inodes, at any commit.

Each method takes `at`, a commit number (LIVE means the present); see schema for how a row "holds".
"""

from __future__ import annotations

import stat

from vfs.catalog.rows import DirEntry
from vfs.catalog.schema import LIVE, holds
from vfs.catalog.transactions import Transactions
from vfs.errors import InvalidArgument, NotFound
from vfs.types import ROOT_INO, Attr, InodeNo, VersionNo

# A page of the entries of a directory at a commit, in cookie order. Those still live and those ended
# since, apart: each part walks an index in cookie order (dirents_list: parent, commit_to, id), where one
# range over commit_to had SQLite sort every entry of the directory for each page (quadratic: `ls -l` of
# 100,000 files in a snapshot took 6 times as long as live). Works for LIVE too (the second part is empty).
_PAGE_AT = (
    "(SELECT * FROM ("
    "  SELECT * FROM (SELECT id, name, ino FROM dirents WHERE parent = ? AND commit_to = ? AND commit_from <= ?"
    "                 AND id > ? ORDER BY id LIMIT ?)"
    "  UNION ALL"
    "  SELECT * FROM (SELECT id, name, ino FROM dirents WHERE parent = ? AND commit_to > ? AND commit_to < ?"
    "                 AND commit_from <= ? AND id > ? ORDER BY id LIMIT ?)"
    ") ORDER BY id LIMIT ?)"
)


def _page_at_args(parent: InodeNo, after: int, limit: int, at: int) -> tuple[int, ...]:
    return (parent, LIVE, at, after, limit, parent, at, LIVE, at, after, limit, limit)


class Namespace(Transactions):
    """Names, listings and attributes of the tree at a commit (read only)."""

    def lookup(self, parent: InodeNo, name: bytes, at: int = LIVE) -> InodeNo | None:
        """The inode `name` points to in directory `parent` at commit `at`."""
        row = self._one(
            "SELECT ino, commit_to FROM dirents WHERE parent = ? AND name = ? AND commit_from <= ?"
            " ORDER BY commit_from DESC LIMIT 1",
            (parent, name, at),
        )
        if row is None or not holds(int(row[1]), at):
            return None
        return InodeNo(int(row[0]))

    def last_dirent_id(self) -> int:
        """The newest entry's id (ids only grow): `names_added_after` lists the names made after it."""
        return int(self._one("SELECT coalesce(max(id), 0) FROM dirents")[0])

    def names_added_after(self, dirent_id: int) -> list[tuple[InodeNo, bytes, InodeNo]]:
        """(directory, name, inode) of the live names made after entry `dirent_id` (`last_dirent_id`)."""
        rows = self._all("SELECT parent, name, ino FROM dirents WHERE id > ? AND commit_to = ? ORDER BY id",
                         (dirent_id, LIVE))
        return [(InodeNo(int(p)), bytes(n), InodeNo(int(i))) for p, n, i in rows]

    def readdir(self, parent: InodeNo, after: int = 0, limit: int = 1000, at: int = LIVE) -> list[DirEntry]:
        """Entries of `parent` with cookie > `after`, in cookie order (stable under concurrent change)."""
        if at == LIVE:
            rows = self._all(
                "SELECT id, name, ino FROM dirents WHERE parent = ? AND commit_to = ? AND id > ? ORDER BY id LIMIT ?",
                (parent, LIVE, after, limit),
            )
        else:
            rows = self._all(f"SELECT id, name, ino FROM {_PAGE_AT}", _page_at_args(parent, after, limit, at))
        return [DirEntry(int(i), bytes(n), InodeNo(int(o))) for i, n, o in rows]

    def readdir_attrs(
        self, parent: InodeNo, after: int = 0, limit: int = 1000, at: int = LIVE
    ) -> list[tuple[DirEntry, Attr]]:
        """`readdir` with each entry's `attr` at the same commit, in one query (a listing of a history
        view asked one query per entry: four times slower than the live tree's, which is cached)."""
        rows = self._all(
            "SELECT d.id, d.name, d.ino, s.mode, s.uid, s.gid, s.rdev, s.size, s.atime_ns, s.mtime_ns, s.ctime_ns,"
            " coalesce(v.vno, 0),"
            f" CASE WHEN s.mode & {stat.S_IFMT(0o177777)} = {stat.S_IFDIR} THEN 2 + s.subdirs ELSE"
            "  (SELECT count(*) FROM dirents l WHERE l.ino = d.ino AND l.commit_to > ? AND l.commit_from <= ?) END"
            # The page first: joined before the LIMIT, every entry of the directory would be.
            f" FROM {_PAGE_AT} d"
            " JOIN inode_states s ON s.ino = d.ino AND s.commit_from ="
            "  (SELECT max(commit_from) FROM inode_states WHERE ino = d.ino AND commit_from <= ?)"
            " LEFT JOIN versions v ON v.id = s.version"
            " ORDER BY d.id",
            (min(at, LIVE - 1), at, *_page_at_args(parent, after, limit, at), at),
        )
        return [(DirEntry(int(i), bytes(n), InodeNo(int(o))),
                 Attr(InodeNo(int(o)), mode, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns, VersionNo(vno),
                      nlink))
                for i, n, o, mode, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns, vno, nlink in rows]

    def path_of(self, ino: InodeNo) -> bytes | None:
        """One live path of `ino` from the root ('a/b'; b'' for the root); None once it has no name."""
        names: list[bytes] = []
        while ino != ROOT_INO:
            row = self._one("SELECT parent, name FROM dirents WHERE ino = ? AND commit_to = ? LIMIT 1", (ino, LIVE))
            if row is None:
                return None
            ino, name = InodeNo(int(row[0])), bytes(row[1])
            names.append(name)
        return b"/".join(reversed(names))

    def attr(self, ino: InodeNo, at: int = LIVE) -> Attr:
        """Attributes of `ino` at commit `at` (NotFound if it did not exist then)."""
        with self._lock:
            if at == LIVE and self.cache_live_attrs:
                cached = self._live_attrs.get(ino)
                if cached is not None:
                    return cached
            # One statement (one read transaction). A directory's link count is 2 + its subdirectories,
            # as on ext4 (its name, its '.', and each subdirectory's '..'), read from its state row: never
            # counted here. At LIVE, live entries have commit_to = LIVE.
            row = self._db.execute(
                "SELECT s.mode, s.uid, s.gid, s.rdev, s.size, s.atime_ns, s.mtime_ns, s.ctime_ns, coalesce(v.vno, 0),"
                f" CASE WHEN s.mode & {stat.S_IFMT(0o177777)} = {stat.S_IFDIR} THEN 2 + s.subdirs ELSE"
                " (SELECT count(*) FROM dirents d WHERE d.ino = s.ino AND d.commit_to > ? AND d.commit_from <= ?) END"
                " FROM inode_states s LEFT JOIN versions v ON v.id = s.version"
                " WHERE s.ino = ? AND s.commit_from <= ? ORDER BY s.commit_from DESC LIMIT 1",
                (min(at, LIVE - 1), at, ino, at),
            ).fetchone()
            if row is None:
                raise NotFound(f"inode {ino} does not exist at commit {at}")
            mode, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns, vno, nlink = row
            attr = Attr(InodeNo(ino), mode, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns, VersionNo(vno), nlink)
            if at == LIVE and self.cache_live_attrs:
                self._cache_attr(attr)
        return attr

    def readlink(self, ino: InodeNo) -> bytes:
        row = self._one("SELECT target FROM inodes WHERE ino = ?", (ino,))
        if row is None or row[0] is None:
            raise InvalidArgument(f"inode {ino} is not a symlink")
        return bytes(row[0])

    def inode_count(self) -> int:
        row = self._one("SELECT count(DISTINCT ino) FROM dirents WHERE commit_to = ?", (LIVE,))
        return int(row[0]) + 1 if row else 1
