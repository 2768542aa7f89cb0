"""Consistency of the catalog on its own (fsck's catalog half: rows that point to missing rows)."""

from __future__ import annotations

import stat

from vfs.catalog.rows import decode_chunk_list
from vfs.catalog.schema import LIVE, PRUNED
from vfs.catalog.transactions import Transactions
from vfs.types import ROOT_INO


class Checks(Transactions):
    """The catalog's own consistency check."""

    def check(self) -> list[str]:
        """Catalog-internal consistency problems (empty when consistent)."""
        problems = []
        for (name, ino) in self._all(
            "SELECT d.name, d.ino FROM dirents d LEFT JOIN inodes i ON i.ino = d.ino WHERE i.ino IS NULL"
        ):
            problems.append(f"directory entry {name!r} points to missing inode {ino}")
        for (parent,) in self._all(
            "SELECT DISTINCT d.parent FROM dirents d WHERE d.commit_to = ? AND d.parent != ? AND NOT EXISTS"
            " (SELECT 1 FROM dirents p WHERE p.ino = d.parent AND p.commit_to = ?)",
            (LIVE, ROOT_INO, LIVE),
        ):
            problems.append(f"live entries under directory {parent}, which has no live name")
        for (ino, version) in self._all(
            "SELECT s.ino, s.version FROM inode_states s WHERE s.version NOT IN (0, ?) AND NOT EXISTS"
            " (SELECT 1 FROM versions v WHERE v.id = s.version)", (PRUNED,)
        ):
            problems.append(f"inode {ino} state points to missing version id {version}")
        for (ino, version) in self._all(
            "SELECT s.ino, s.version FROM inode_states s JOIN versions v ON v.id = s.version WHERE s.size != v.size"
        ):
            problems.append(f"inode {ino} has a state whose size differs from its version (id {version})")
        for (ino,) in self._all(
            "SELECT v.ino FROM versions v LEFT JOIN inodes i ON i.ino = v.ino WHERE i.ino IS NULL"
        ):
            problems.append(f"a version belongs to missing inode {ino}")
        for (name, commit_no) in self._all(
            "SELECT s.name, s.commit_no FROM snapshots s LEFT JOIN commits c ON c.commit_no = s.commit_no"
            " WHERE c.commit_no IS NULL"
        ):
            problems.append(f"snapshot {name!r} names missing commit {commit_no}")
        for (ino,) in self._all(
            "SELECT ino FROM inodes WHERE NOT EXISTS (SELECT 1 FROM inode_states s WHERE s.ino = inodes.ino)"
        ):
            problems.append(f"inode {ino} has no state")
        for (ino, subdirs, counted) in self._all(
            "WITH dirs(ino, subdirs) AS (SELECT s.ino, s.subdirs FROM inode_states s WHERE"
            f" s.mode & {stat.S_IFMT(0o177777)} = {stat.S_IFDIR} AND s.commit_from ="
            "  (SELECT max(commit_from) FROM inode_states WHERE ino = s.ino))"
            " SELECT dirs.ino, dirs.subdirs, (SELECT count(*) FROM dirents d JOIN inodes i ON i.ino = d.ino"
            "  WHERE d.parent = dirs.ino AND d.commit_to = ? AND i.kind = ?) AS n FROM dirs WHERE n != dirs.subdirs",
            (LIVE, stat.S_IFDIR),
        ):
            problems.append(f"directory {ino} records {subdirs} subdirectories but has {counted}")
        with self._lock:
            known = {bytes(r[0]) for r in self._db.execute("SELECT id FROM chunks")}
            for ino, vno, size, blob in self._db.execute("SELECT ino, vno, size, chunks FROM versions"):
                chunks = decode_chunk_list(blob)
                if sum(n for _, n in chunks) != size:
                    problems.append(f"version {vno} of inode {ino}: its chunks do not add up to its size {size}")
                for cid, _ in chunks:
                    if cid not in known:
                        problems.append(f"version {vno} of inode {ino} uses unknown chunk {cid.hex()}")
            integrity = self._db.execute("PRAGMA quick_check").fetchall()
        if [tuple(r) for r in integrity] != [("ok",)]:
            problems.extend(f"SQLite: {r[0]}" for r in integrity)
        return problems
