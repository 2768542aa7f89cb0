"""Content versions and the chunk locations they use.

A version is immutable once committed: the next save of a file adds a version numbered after its
history's last (schema: versions.lineage), and points the file's new state to it.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from typing import Any

from vfs.catalog.rows import Commit, Version, decode_chunk_list, encode_chunk_list
from vfs.catalog.schema import LIVE, PRUNED
from vfs.catalog.states import States
from vfs.errors import MissingChunk, NotFound
from vfs.store import ChunkLocation, Ingested
from vfs.types import ChunkId, CommitNo, InodeNo, PackNo, VersionNo


class Versions(States):
    """Committing content versions (with their chunks' locations) and reading them back."""

    def locate(self, chunk_id: ChunkId) -> ChunkLocation:
        row = self._one("SELECT pack, offset, codec, stored_len, plain_len FROM chunks WHERE id = ?", (chunk_id,))
        if row is None:
            raise MissingChunk(f"chunk {chunk_id.hex()} is referenced but no pack holds it")
        return ChunkLocation(chunk_id, PackNo(row[0]), *row[1:])

    def locate_all(self, chunk_ids: Sequence[ChunkId]) -> list[ChunkLocation]:
        """`locate` of many chunks in one query (in batches past SQLite's variable limit), in the same
        order, repeats included: a reader resolves a whole version at once.

        Raises:
            MissingChunk: a chunk has no row (named as `locate` names it).
        """
        batch = 500  # well under SQLITE_MAX_VARIABLE_NUMBER of any SQLite build (999 before 3.32)
        unique = list(dict.fromkeys(chunk_ids))
        found: dict[bytes, ChunkLocation] = {}
        for i in range(0, len(unique), batch):
            part = unique[i : i + batch]
            marks = ",".join("?" * len(part))
            sql = f"SELECT id, pack, offset, codec, stored_len, plain_len FROM chunks WHERE id IN ({marks})"
            for r in self._all(sql, tuple(part)):
                found[r[0]] = ChunkLocation(ChunkId(r[0]), PackNo(r[1]), *r[2:])
        for cid in unique:
            if cid not in found:
                raise MissingChunk(f"chunk {cid.hex()} is referenced but no pack holds it")
        return [found[cid] for cid in chunk_ids]

    def commit_version(
        self, ino: InodeNo, ingested: Ingested, *, mtime_ns: int | None = None, origin: str = "write",
        durable: bool = False,
    ) -> Version:
        """Record ingested content as the next version of `ino` (the chunks must be durable already)."""
        return self.commit_versions([(ino, ingested, mtime_ns, None)], origin=origin, durable=durable)[0]

    def commit_versions(
        self, items: Sequence[tuple[InodeNo, Ingested, int | None, int | None]], *, origin: str = "write",
        durable: bool = False,
    ) -> list[Version]:
        """Record many (inode, content, mtime, time) as new versions in one transaction.

        Each version gets a commit of its own, dated its `time` (when its content last changed; None:
        now) but not before the commit preceding it, so the tree at an instant holds the saves made by
        then (a batch of saves committed a moment later is not dated then). An mtime of None is that time.
        Chunk locations, versions and the inodes' new states commit together, so a version never
        exists without the locations of its chunks.
        """
        out = []
        with self._write(durable=durable, time_ns=items[0][3] if items else None, exact=True) as first:
            for i, (ino, ingested, mtime_ns, time_ns) in enumerate(items):
                c = first if i == 0 else self._add_commit(time_ns)
                self._db.executemany(
                    "INSERT OR IGNORE INTO chunks(id, pack, offset, codec, stored_len, plain_len) VALUES (?,?,?,?,?,?)",
                    [(x.chunk_id, x.pack, x.offset, x.codec, x.stored_len, x.plain_len) for x in ingested.new],
                )
                mtime = c.time_ns if mtime_ns is None else mtime_ns
                out.append(self._insert_version(c, ino, ingested.size, ingested.content_hash, ingested.chunks,
                                                mtime, origin))
        return out

    def _insert_version(
        self, c: Commit, ino: InodeNo, size: int, content_hash: bytes, chunks: list[tuple[ChunkId, int]],
        mtime_ns: int, origin: str,
    ) -> Version:
        """The next version of `ino`'s history, made current (the chunks' locations must be recorded)."""
        (lineage,) = self._db.execute("SELECT lineage FROM inodes WHERE ino = ?", (ino,)).fetchone()
        vno = VersionNo(self._db.execute("SELECT coalesce(max(vno), 0) + 1 FROM versions WHERE lineage = ?",
                                         (lineage,)).fetchone()[0])
        cur = self._db.execute(
            "INSERT INTO versions(ino, lineage, vno, commit_no, size, hash, chunks, mtime_ns, origin)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (ino, lineage, vno, c.no, size, content_hash, encode_chunk_list(chunks), mtime_ns, origin),
        )
        # Its attributes stay cached (vno given): else the first stat or listing after each save asked
        # SQLite, and the first `find -ls` after 10,000 small files were saved ran at half speed.
        state = self._change_state(c, ino, size=size, version=int(cur.lastrowid or 0), mtime_ns=mtime_ns,
                                   ctime_ns=c.time_ns, vno=vno)
        return Version(ino, vno, c.no, c.time_ns, size, content_hash, chunks, mtime_ns, origin, state["mode"],
                       state["uid"], state["gid"])

    # A version's commit always adds a state row of its writer (v.ino) at that commit; `<=` is the
    # usual "state at commit S" rule all the same.
    _VERSION_COLS = (
        "v.ino, v.vno, v.commit_no, c.time_ns, v.size, v.hash, v.chunks, v.mtime_ns, v.origin, s.mode, s.uid, s.gid"
        " FROM versions v JOIN commits c ON c.commit_no = v.commit_no"
        " JOIN inode_states s ON s.ino = v.ino AND s.commit_from ="
        "  (SELECT max(commit_from) FROM inode_states WHERE ino = v.ino AND commit_from <= v.commit_no)"
    )

    @staticmethod
    def _version(row: Any) -> Version:
        ino, vno, commit_no, time_ns, size, hash_, chunks, mtime_ns, origin, mode, uid, gid = row
        return Version(InodeNo(ino), VersionNo(vno), CommitNo(commit_no), time_ns, size, bytes(hash_),
                       decode_chunk_list(chunks), mtime_ns, origin, mode, uid, gid)

    def version(self, ino: InodeNo, vno: int) -> Version | None:
        """Version `vno` of the history `ino` belongs to (its lineage)."""
        row = self._one(
            f"SELECT {self._VERSION_COLS} WHERE v.lineage = (SELECT lineage FROM inodes WHERE ino = ?) AND v.vno = ?",
            (ino, vno),
        )
        return self._version(row) if row else None

    def lineage(self, ino: InodeNo) -> int:
        """The history `ino`'s versions are numbered in (see inodes.lineage); NotFound for no inode."""
        row = self._one("SELECT lineage FROM inodes WHERE ino = ?", (ino,))
        if row is None:
            raise NotFound(f"inode {ino} does not exist")
        return int(row[0])

    def versions(self, ino: InodeNo) -> list[Version]:
        """The whole history of `ino`, oldest first (including files it replaced by atomic saves)."""
        return [self._version(r) for r in self._all(
            f"SELECT {self._VERSION_COLS} WHERE v.lineage = (SELECT lineage FROM inodes WHERE ino = ?)"
            " ORDER BY v.vno", (ino,))]

    def versions_after(self, ino: InodeNo, after: int, limit: int) -> list[Version]:
        """Versions of `ino`'s history numbered above `after`, at most `limit` (for paged listings)."""
        return [self._version(r) for r in self._all(
            f"SELECT {self._VERSION_COLS} WHERE v.lineage = (SELECT lineage FROM inodes WHERE ino = ?)"
            " AND v.vno > ? ORDER BY v.vno LIMIT ?", (ino, after, limit))]

    def version_at(self, ino: InodeNo, at: int = LIVE) -> Version | None:
        """The content version current at commit `at` (None for an empty or never-written file).

        Raises:
            NotFound: that content was pruned (see schema.PRUNED).
        """
        with self._lock:
            state = self._db.execute(
                "SELECT version FROM inode_states WHERE ino = ? AND commit_from <= ? ORDER BY commit_from DESC LIMIT 1",
                (ino, at),
            ).fetchone()
            if state is None or state[0] == 0:
                return None
            if state[0] == PRUNED:
                raise NotFound(f"the content of inode {ino} at commit {at} was pruned")
            row = self._db.execute(f"SELECT {self._VERSION_COLS} WHERE v.id = ?", (state[0],)).fetchone()
        return self._version(row) if row else None

    def versions_under(
        self, dirs: Sequence[tuple[InodeNo, int, int]], *, since_ns: int, until_ns: int,
    ) -> list[tuple[bytes, Version]]:
        """The versions of every regular file that is or was under a directory, newest first, each with
        the file's path below it: (path relative to the directory, version).

        `dirs` are (directory inode, first, end): the directory the path led to in commits [first, end),
        as `path_spans` gives them. A file's path is the last one it had under the directory, and its
        history is all of it (also versions made before it came there), as `vfs log FILE` shows it; only
        versions committed in [since_ns, until_ns] are returned. One recursive query: each level joins
        the entries whose commits overlap their parent's, so a name counts only while its parent was there.
        """
        if not dirs:
            return []
        seeds = ",".join("(?,?,?)" for _ in dirs)
        rows = self._all(
            f"WITH RECURSIVE seeds(ino, lo, hi) AS (VALUES {seeds}),"
            " under(ino, path, lo, hi) AS ("
            "  SELECT d.ino, CAST(d.name AS BLOB), max(d.commit_from, s.lo), min(d.commit_to, s.hi)"
            "   FROM seeds s JOIN dirents d ON d.parent = s.ino AND d.commit_from < s.hi AND d.commit_to > s.lo"
            "  UNION ALL"
            # Concatenation makes TEXT of the bytes, unchanged; the CAST makes them a BLOB again.
            "  SELECT d.ino, CAST(u.path || x'2f' || d.name AS BLOB), max(d.commit_from, u.lo), min(d.commit_to, u.hi)"
            "   FROM under u JOIN dirents d ON d.parent = u.ino AND d.commit_from < u.hi AND d.commit_to > u.lo),"
            " files(lineage, path) AS (SELECT lineage, path FROM ("
            "  SELECT i.lineage, u.path,"
            "   row_number() OVER (PARTITION BY i.lineage ORDER BY u.hi DESC, u.lo DESC, u.path) AS latest"
            "   FROM under u JOIN inodes i ON i.ino = u.ino WHERE i.kind = ?) WHERE latest = 1)"
            f" SELECT f.path, {self._VERSION_COLS} JOIN files f ON f.lineage = v.lineage"
            " WHERE c.time_ns >= ? AND c.time_ns <= ? ORDER BY c.time_ns DESC, v.commit_no DESC, f.path",
            (*(x for span in dirs for x in span), stat.S_IFREG, since_ns, until_ns),
        )
        return [(bytes(r[0]), self._version(r[1:])) for r in rows]

    def version_by_hash(self, content_hash: bytes) -> Version | None:
        row = self._one(f"SELECT {self._VERSION_COLS} WHERE v.hash = ? LIMIT 1", (content_hash,))
        return self._version(row) if row else None

    def hashes_with_prefix(self, prefix: bytes, limit: int = 2) -> list[bytes]:
        """Distinct content hashes starting with `prefix` (an index range scan), at most `limit`."""
        rows = self._all("SELECT DISTINCT hash FROM versions WHERE hash >= ? AND hash <= ? ORDER BY hash LIMIT ?",
                         (prefix, prefix + b"\xff" * max(0, 32 - len(prefix)), limit))
        return [bytes(r[0]) for r in rows]
