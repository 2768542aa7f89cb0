"""Retention and garbage collection: which versions are held, pruning them, and the chunk rows gc drops or moves.

Deletion runs in the reverse of write order: version rows go first (prune), then chunk rows that no
version uses (gc), and only then their bytes in packs (the store's job).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from vfs.catalog.rows import VersionInfo, decode_chunk_list
from vfs.catalog.schema import LIVE, PRUNED
from vfs.catalog.transactions import Transactions
from vfs.errors import NotFound
from vfs.store import ChunkLocation
from vfs.types import ChunkId, CommitNo, InodeNo, PackNo, VersionNo


class Retention(Transactions):
    """What prune and gc ask of and do to the catalog."""

    def version_infos(self) -> list[VersionInfo]:
        """Every version row, cheaply (no chunk lists), oldest first."""
        return [VersionInfo(int(r[0]), InodeNo(int(r[1])), VersionNo(int(r[2])), CommitNo(int(r[3])), int(r[4]),
                            int(r[5]))
                for r in self._all("SELECT v.id, v.ino, v.vno, v.commit_no, c.time_ns, v.size FROM versions v"
                                   " JOIN commits c ON c.commit_no = v.commit_no ORDER BY v.id")]

    def current_version_ids(self) -> set[int]:
        """Ids of the versions that files with at least one live name hold now (never pruned)."""
        rows = self._all(
            "SELECT s.version FROM (SELECT DISTINCT ino FROM dirents WHERE commit_to = ?) f"
            " JOIN inode_states s ON s.ino = f.ino AND s.commit_from ="
            "  (SELECT max(commit_from) FROM inode_states WHERE ino = f.ino)"
            " WHERE s.version > 0", (LIVE,))
        return {int(r[0]) for r in rows}

    def version_ids_at(self, at: int) -> set[int]:
        """Ids of the versions the files of the tree at commit `at` held (what a snapshot there keeps)."""
        rows = self._all(
            "SELECT s.version FROM (SELECT DISTINCT ino FROM dirents WHERE commit_from <= ? AND commit_to > ?) f"
            " JOIN inode_states s ON s.ino = f.ino AND s.commit_from ="
            "  (SELECT max(commit_from) FROM inode_states WHERE ino = f.ino AND commit_from <= ?)"
            " WHERE s.version > 0", (at, min(at, LIVE - 1), at))
        return {int(r[0]) for r in rows}

    def current_version_ids_of(self, inos: Iterable[InodeNo]) -> set[int]:
        """Ids of the versions inodes `inos` hold now (open files the daemon still reads, named or not)."""
        out = set()
        with self._lock:
            for ino in inos:
                row = self._db.execute("SELECT version FROM inode_states WHERE ino = ? ORDER BY commit_from DESC"
                                       " LIMIT 1", (ino,)).fetchone()
                if row is not None and row[0] > 0:
                    out.add(int(row[0]))
        return out

    def prune(self, version_ids: Iterable[int], snapshot_names: Sequence[str] = (), *,
              step: Callable[[str], None] = lambda what: None) -> tuple[int, int]:
        """Delete snapshots and version rows in one transaction; (versions deleted, their bytes).

        States that pointed to a deleted version are kept with version PRUNED (see the schema), so the
        tree at any commit still resolves. A version that files with a live name hold now, or that a
        remaining snapshot holds, is never deleted: it is checked again here, inside the transaction.
        Chunks stay: `vfs gc` frees those no version uses any more. `step("commit")` is called just
        before the transaction commits (a test kills the process there).
        """
        ids = sorted(set(version_ids))
        with self._write(durable=True):
            for name in snapshot_names:
                if self._db.execute("DELETE FROM snapshots WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFound(f"no snapshot named {name!r}")
            held = self.current_version_ids()
            for (commit_no,) in self._db.execute("SELECT commit_no FROM snapshots").fetchall():
                held |= self.version_ids_at(int(commit_no))
            ids = [i for i in ids if i not in held]
            freed = 0
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                freed += int(self._db.execute(f"SELECT coalesce(sum(size), 0) FROM versions WHERE id IN ({marks})",
                                              part).fetchone()[0])
                self._db.execute(f"UPDATE inode_states SET version = ? WHERE version IN ({marks})", (PRUNED, *part))
                self._db.execute(f"DELETE FROM versions WHERE id IN ({marks})", part)
            step("commit")
        return len(ids), freed

    def iter_version_chunks(self, batch: int = 1000) -> Iterator[list[ChunkId]]:
        """The chunk ids of every version, a batch of versions at a time (not one long read transaction)."""
        last = 0
        while True:
            rows = self._all("SELECT id, chunks FROM versions WHERE id > ? ORDER BY id LIMIT ?", (last, batch))
            if not rows:
                return
            last = int(rows[-1][0])
            yield [cid for _, blob in rows for cid, _ in decode_chunk_list(blob)]

    def max_version_id(self) -> int:
        return int(self._one("SELECT coalesce(max(id), 0) FROM versions")[0])

    def delete_chunks(self, chunk_ids: Iterable[ChunkId], *, versions_after: int | None = None) -> int:
        """Delete chunk rows (gc: before their pack bytes go); returns how many went.

        `versions_after`: the last version id the caller's scan of used chunks saw; a chunk that a
        version made since then uses is kept (checked inside the transaction, so cheap and race-free).
        """
        ids = list(chunk_ids)
        if not ids:
            return 0
        with self._write(durable=True):
            if versions_after is not None:
                used: set[bytes] = set()
                for (blob,) in self._db.execute("SELECT chunks FROM versions WHERE id > ?", (versions_after,)):
                    used.update(cid for cid, _ in decode_chunk_list(blob))
                ids = [i for i in ids if i not in used]
            self._db.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in ids])
        return len(ids)

    def move_chunks(self, moves: Sequence[tuple[ChunkLocation, ChunkLocation]]) -> int:
        """Point chunk rows at new locations (a repack; the new entries must be durable already).

        Each (old, new) moves only a row that is still at `old`; returns how many moved.
        """
        moved = 0
        with self._write(durable=True):
            for old, new in moves:
                moved += self._db.execute(
                    "UPDATE chunks SET pack = ?, offset = ?, codec = ?, stored_len = ?, plain_len = ?"
                    " WHERE id = ? AND pack = ? AND offset = ?",
                    (new.pack, new.offset, new.codec, new.stored_len, new.plain_len, old.chunk_id, old.pack,
                     old.offset),
                ).rowcount
        return moved

    def chunk_locations(self) -> list[ChunkLocation]:
        return [ChunkLocation(ChunkId(bytes(r[0])), PackNo(r[1]), *r[2:])
                for r in self._all("SELECT id, pack, offset, codec, stored_len, plain_len FROM chunks")]

    def chunk_locations_in(self, pack: PackNo) -> list[ChunkLocation]:
        """The chunk rows that name `pack`."""
        return [ChunkLocation(ChunkId(bytes(r[0])), PackNo(r[1]), *r[2:])
                for r in self._all("SELECT id, pack, offset, codec, stored_len, plain_len FROM chunks WHERE pack = ?",
                                   (pack,))]
