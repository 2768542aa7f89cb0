"""Catalog: typed access to the SQLite catalog (the only module that speaks SQL).

Every mutating method is one transaction that first inserts a `commits` row; its number (`CommitNo`)
then names the new state of the whole tree (`commit_versions` adds one per version, in one
transaction). Reading methods take `at` (a commit number; LIVE means the present). Methods are
thread-safe: one connection guarded by a lock, short transactions only, so the trio loop may call
them inline while ingest threads call `has_chunk`.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfs.catalog.schema import LIVE, MIGRATIONS, PRUNED, REMOTE_TABLES, SCHEMA_VERSION, TABLES
from vfs.errors import (
    Exists,
    InvalidArgument,
    IsADirectory,
    MissingChunk,
    NameTooLong,
    NoData,
    NoSpace,
    NotADirectory,
    NotAStore,
    NotEmpty,
    NotFound,
    NotPermitted,
    SchemaTooNew,
    StoreError,
)
from vfs.fsutil import PRIVATE_FILE, fsync_path
from vfs.store import ChunkLocation, Ingested
from vfs.types import ROOT_INO, ChunkId, CommitNo, InodeNo, PackNo, VersionNo

NAME_MAX = 255
_CLOCK_REALTIME_COARSE = 5  # Linux's clock id; Python's time module does not name it


def now_ns() -> int:
    """The clock of commit times (also for times given to commits, such as a save's). The kernel stamps
    file times with its coarse clock: a file created and then written in the same tick then keeps its
    mtime, which spares a SETATTR round trip at close."""
    return time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)


_CHUNK_REF = struct.Struct("<32sI")


def encode_chunk_list(chunks: Iterable[tuple[ChunkId, int]]) -> bytes:
    return b"".join(_CHUNK_REF.pack(cid, n) for cid, n in chunks)


def decode_chunk_list(blob: bytes) -> list[tuple[ChunkId, int]]:
    return [(ChunkId(cid), n) for cid, n in _CHUNK_REF.iter_unpack(blob)]


@dataclass(frozen=True, slots=True)
class Attr:
    ino: InodeNo
    mode: int
    uid: int
    gid: int
    rdev: int
    size: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    vno: VersionNo  # content version (files); 0 when empty or not a file
    nlink: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass(frozen=True, slots=True)
class Version:
    ino: InodeNo
    vno: VersionNo
    commit_no: CommitNo
    time_ns: int  # when it was committed
    size: int
    hash: bytes
    chunks: list[tuple[ChunkId, int]]
    mtime_ns: int
    origin: str
    # The writer's st_mode, owner and group in the state its commit left: what a view of this version
    # shows (`f@3`, `f@/3`), never the file's current ones, which may be looser (a secret written 0600,
    # chmod 644 after it was replaced). A chmod while the version was current does not change them.
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class DirEntry:
    cookie: int  # pass back as `after` to continue a listing
    name: bytes
    ino: InodeNo


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str
    commit_no: CommitNo
    time_ns: int


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A version row without its chunk list (for retention)."""

    id: int  # versions.id
    ino: InodeNo
    vno: VersionNo
    commit_no: CommitNo
    time_ns: int  # when it was committed
    size: int


@dataclass(frozen=True, slots=True)
class Commit:
    no: CommitNo
    time_ns: int


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One name of the tree at some commit, with what it pointed to then."""

    path: bytes  # relative to the root, components joined by b"/"
    ino: InodeNo
    mode: int
    size: int
    hash: bytes | None  # content hash of a regular file's version; None when empty or not a file
    target: bytes | None  # symlink target


_STATE_COLS = "mode, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns, version, subdirs"
_STATE_KEYS = tuple(c.strip() for c in _STATE_COLS.split(","))
_STATE_ROW = ",".join("?" * (2 + len(_STATE_KEYS)))  # placeholders of (ino, commit_from, *state)
CATALOG_FILE = "catalog.db"


class Catalog:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._db = conn
        self.path = path
        self._lock = threading.RLock()
        self._checkpointer: sqlite3.Connection | None = None
        # Live attributes by inode, for the holder of the store lock only (no other process writes
        # then): every request of a mount asks for them. Emptied by every write transaction.
        self.cache_live_attrs = False
        self._live_attrs: dict[InodeNo, Attr] = {}
        self._last_time_ns = self._db.execute("SELECT coalesce(max(time_ns), 0) FROM commits").fetchone()[0]
        self._tx_last_time_ns = self._last_time_ns  # the newest commit time in the open transaction

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def initialize(cls, path: Path, store_id: str, config: dict[str, object], uid: int, gid: int) -> Catalog:
        """Create a new catalog at `path` with an empty root directory (mode 0755)."""
        path.touch(mode=PRIVATE_FILE)  # SQLite gives its -wal and -shm files the database file's mode
        conn = _connect(path)
        conn.executescript("BEGIN;" + TABLES + "COMMIT;")
        cat = cls(conn, path)
        with cat._write() as c:
            cat._db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [("schema_version", str(SCHEMA_VERSION)), ("store_id", store_id), ("config", json.dumps(config))],
            )
            cat._db.execute("INSERT INTO inodes(ino, kind, created, lineage) VALUES (?, ?, ?, ?)",
                            (ROOT_INO, stat.S_IFDIR, c.no, ROOT_INO))
            cat._insert_state(c, ROOT_INO, dict(mode=stat.S_IFDIR | 0o755, uid=uid, gid=gid, rdev=0, size=0,
                                                atime_ns=c.time_ns, mtime_ns=c.time_ns, ctime_ns=c.time_ns,
                                                version=0, subdirs=0))
        return cat

    @classmethod
    def open(cls, path: Path) -> Catalog:
        if not path.is_file():
            raise NotAStore(f"{path.parent} is not a vfs store (no {path.name})")
        conn = None
        try:
            # Read the version before _connect: a newer vfs may use a journal mode or pragmas this
            # one must not impose on its catalog.
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
            row = has_meta and conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if not row:
                raise NotAStore(f"{path} is not a vfs catalog (no schema version)")
            if int(row[0]) > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"store {path.parent} has schema version {row[0]}; this vfs reads up to {SCHEMA_VERSION}:"
                    " upgrade vfs"
                )
            conn.close()
            conn = _connect(path)
            if int(row[0]) < SCHEMA_VERSION:
                _migrate(conn)
            try:
                conn.executescript(REMOTE_TABLES)  # a catalog made before remote sync existed
            except sqlite3.OperationalError:
                pass  # read-only (e.g. opened next to a daemon that holds a write lock): created later
            return cls(conn, path)
        except sqlite3.DatabaseError as e:
            if conn is not None:
                conn.close()
            raise StoreError(f"catalog {path} cannot be read: {e}") from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
            self._db.close()

    def defer_checkpoints(self) -> None:
        """Stop copying the WAL into the database inside commits (it fsyncs, stalling the caller).

        Whoever calls this must call `checkpoint()` regularly, off the hot path.
        """
        with self._lock:
            self._db.execute("PRAGMA wal_autocheckpoint = 0")

    def checkpoint(self) -> None:
        """Copy committed WAL frames into the database file. Slow (fsyncs): call from a thread.

        PASSIVE never blocks writers; it uses its own connection, so it never holds the catalog lock.
        """
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def sync(self) -> None:
        """Make every committed transaction survive a power loss (fsync the WAL)."""
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            fsync_path(wal)  # no lock: fsync only waits for the disk, never for other commits
        except FileNotFoundError:
            pass

    def meta(self, key: str) -> str:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        if row is None:
            raise StoreError(f"catalog {self.path} lacks meta key {key!r}")
        return str(row[0])

    def meta_or_none(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str | None) -> None:
        """Set (or with None, remove) a meta value; not a commit (it changes no tree)."""
        with self._plain_write():
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- remote sync ------------------------------------------------------------------------------
    def remote_packs(self) -> dict[PackNo, tuple[str, int]]:
        """pack -> (object key, size) of every pack the remote holds."""
        return {PackNo(p): (k, n) for p, k, n in self._all("SELECT pack, key, size FROM remote_packs")}

    def remote_pack(self, pack: PackNo) -> tuple[str, int] | None:
        """(object key, size) of `pack` on the remote, or None if it is not there."""
        row = self._one("SELECT key, size FROM remote_packs WHERE pack = ?", (pack,))
        return None if row is None else (str(row[0]), int(row[1]))

    def add_remote_pack(self, pack: PackNo, key: str, size: int) -> None:
        """Record that the remote holds all of `pack` (after it acknowledged the upload)."""
        with self._plain_write():
            self._db.execute("INSERT OR REPLACE INTO remote_packs(pack, key, size, uploaded_ns) VALUES (?,?,?,?)",
                             (pack, key, size, time.time_ns()))

    def forget_remote_packs(self, packs: Iterable[PackNo]) -> dict[PackNo, tuple[str, int]]:
        """Delete the remote rows of `packs` that no chunk row names (checked in the transaction);
        returns pack -> (key, size) of the rows deleted. Remote gc: the next checkpoint then stops
        naming them, and only after it is uploaded are their objects deleted."""
        gone: dict[PackNo, tuple[str, int]] = {}
        with self._plain_write():
            for pack in packs:
                if self._db.execute("SELECT 1 FROM chunks WHERE pack = ? LIMIT 1", (pack,)).fetchone():
                    continue
                row = self._db.execute("SELECT key, size FROM remote_packs WHERE pack = ?", (pack,)).fetchone()
                if row is not None:
                    self._db.execute("DELETE FROM remote_packs WHERE pack = ?", (pack,))
                    gone[PackNo(pack)] = (str(row[0]), int(row[1]))
        return gone

    def packs_in_use(self) -> set[PackNo]:
        """Packs that some chunk row names."""
        return {PackNo(p) for (p,) in self._all("SELECT DISTINCT pack FROM chunks")}

    def max_remote_pack(self) -> int:
        """The highest pack number the remote holds (0 if none): packs up to it are sealed for good."""
        try:
            row = self._one("SELECT coalesce(max(pack), 0) FROM remote_packs")
        except sqlite3.OperationalError:
            return 0  # no table yet (an old catalog opened read-only)
        return int(row[0])

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole catalog at `path` (SQLite online backup; a single file).

        Slow for a big catalog: call from a thread. It reads through a connection of its own in one
        read transaction (one WAL snapshot), so it never holds the catalog's lock and writers go on.
        """
        path.touch(mode=PRIVATE_FILE)  # as private as the catalog itself
        src = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        dest = sqlite3.connect(path, isolation_level=None)
        try:
            src.backup(dest)  # all pages in one step: one consistent state
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
            src.close()

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def _plain_write(self) -> Iterator[None]:
        """A transaction that is no commit of the tree (meta, remote bookkeeping)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _write(self, *, durable: bool = False, time_ns: int | None = None) -> Iterator[Commit]:
        """One transaction with a new commit number, made now or at `time_ns` (see `_add_commit`);
        `durable` also fsyncs the WAL at commit."""
        with self._lock:
            db = self._db
            if durable:
                db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                self._tx_last_time_ns = self._last_time_ns
                yield self._add_commit(time_ns)
                db.execute("COMMIT")
                self._last_time_ns = self._tx_last_time_ns
            except BaseException as e:
                if db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    db.execute("ROLLBACK")
                if isinstance(e, sqlite3.OperationalError) and "full" in str(e):
                    raise NoSpace("no space left on the store's disk for the catalog") from None
                raise
            finally:
                self._live_attrs.clear()
                if durable:
                    db.execute("PRAGMA synchronous = NORMAL")

    def _add_commit(self, time_ns: int | None = None) -> Commit:
        """A new commit in the open transaction, dated `time_ns` (default: now) but never before the
        previous commit: commit times must not go backwards, or the tree at a time would not be one
        state. Several commits may share one transaction (see `commit_versions`)."""
        t = max(now_ns() if time_ns is None else time_ns, self._tx_last_time_ns)
        no = self._db.execute("INSERT INTO commits(time_ns) VALUES (?)", (t,)).lastrowid
        assert no is not None
        self._tx_last_time_ns = t
        return Commit(CommitNo(no), t)

    def _one(self, sql: str, args: tuple[object, ...] = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- commits, time, snapshots ----------------------------------------------------------------
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

    def commit_time(self, no: int) -> int | None:
        row = self._one("SELECT time_ns FROM commits WHERE commit_no = ?", (no,))
        return int(row[0]) if row else None

    def create_snapshot(self, name: str) -> Snapshot:
        """Name the current tree. O(1): one row; the snapshot's tree is the tree at its commit."""
        with self._write() as c:
            if self._db.execute("SELECT 1 FROM snapshots WHERE name = ?", (name,)).fetchone():
                raise Exists(f"snapshot {name!r} exists already")
            self._db.execute("INSERT INTO snapshots(name, commit_no, time_ns) VALUES (?, ?, ?)",
                             (name, c.no, c.time_ns))
            return Snapshot(name, c.no, c.time_ns)

    def create_snapshot_at(self, name: str, time_ns: int) -> Snapshot:
        """Name the current tree, recording `time_ns` as the snapshot's time (for imports and tests of
        retention policies, which need snapshots taken at chosen times)."""
        with self._write() as c:
            if self._db.execute("SELECT 1 FROM snapshots WHERE name = ?", (name,)).fetchone():
                raise Exists(f"snapshot {name!r} exists already")
            self._db.execute("INSERT INTO snapshots(name, commit_no, time_ns) VALUES (?, ?, ?)",
                             (name, c.no, time_ns))
            return Snapshot(name, c.no, time_ns)

    def delete_snapshots(self, names: Sequence[str]) -> None:
        """Delete many snapshots in one transaction (NotFound, and nothing deleted, if one is missing)."""
        with self._write():
            for name in names:
                if not _is_text(name) or self._db.execute(
                        "DELETE FROM snapshots WHERE name = ?", (name,)).rowcount == 0:
                    raise NotFound(f"no snapshot named {name!r}")

    def delete_snapshot(self, name: str) -> None:
        self.delete_snapshots([name])

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

    # -- reading the tree ------------------------------------------------------------------------
    def lookup(self, parent: InodeNo, name: bytes, at: int = LIVE) -> InodeNo | None:
        """The inode `name` points to in directory `parent` at commit `at`."""
        row = self._one(
            "SELECT ino, commit_to FROM dirents WHERE parent = ? AND name = ? AND commit_from <= ?"
            " ORDER BY commit_from DESC LIMIT 1",
            (parent, name, at),
        )
        if row is None or not _holds(int(row[1]), at):
            return None
        return InodeNo(int(row[0]))

    def readdir(self, parent: InodeNo, after: int = 0, limit: int = 1000, at: int = LIVE) -> list[DirEntry]:
        """Entries of `parent` with cookie > `after`, in cookie order (stable under concurrent change)."""
        if at == LIVE:
            rows = self._all(
                "SELECT id, name, ino FROM dirents WHERE parent = ? AND commit_to = ? AND id > ? ORDER BY id LIMIT ?",
                (parent, LIVE, after, limit),
            )
        else:
            rows = self._all(
                "SELECT id, name, ino FROM dirents WHERE parent = ? AND commit_to > ? AND commit_from <= ?"
                " AND id > ? ORDER BY id LIMIT ?",
                (parent, at, at, after, limit),
            )
        return [DirEntry(int(i), bytes(n), InodeNo(int(o))) for i, n, o in rows]

    def parent_of(self, ino: InodeNo, at: int = LIVE) -> InodeNo | None:
        """The directory holding a (directory) inode at commit `at`."""
        if ino == ROOT_INO:
            return ROOT_INO
        row = self._one(
            "SELECT parent FROM dirents WHERE ino = ? AND commit_to > ? AND commit_from <= ? LIMIT 1",
            (ino, min(at, LIVE - 1), at),  # at LIVE, rows with commit_to = LIVE hold
        )
        return InodeNo(int(row[0])) if row else None

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

    def exists(self, ino: InodeNo) -> bool:
        return self._one("SELECT 1 FROM inodes WHERE ino = ?", (ino,)) is not None

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
                if len(self._live_attrs) >= 100_000:
                    self._live_attrs.clear()
                self._live_attrs[ino] = attr
        return attr

    def readlink(self, ino: InodeNo) -> bytes:
        row = self._one("SELECT target FROM inodes WHERE ino = ?", (ino,))
        if row is None or row[0] is None:
            raise InvalidArgument(f"inode {ino} is not a symlink")
        return bytes(row[0])

    def inode_count(self) -> int:
        row = self._one("SELECT count(DISTINCT ino) FROM dirents WHERE commit_to = ?", (LIVE,))
        return int(row[0]) + 1 if row else 1

    # -- changing the tree -----------------------------------------------------------------------
    def _live_dirent(self, parent: InodeNo, name: bytes) -> tuple[int, InodeNo] | None:
        row = self._db.execute(
            # Pinned: the planner preferred dirents_list, a scan of every live entry of the directory.
            "SELECT id, ino FROM dirents INDEXED BY dirents_name WHERE parent = ? AND name = ? AND commit_to = ?",
            (parent, name, LIVE),
        ).fetchone()
        return (int(row[0]), InodeNo(int(row[1]))) if row else None

    def _current_state(self, ino: InodeNo) -> dict[str, int]:
        row = self._db.execute(
            f"SELECT {_STATE_COLS} FROM inode_states WHERE ino = ? ORDER BY commit_from DESC LIMIT 1", (ino,)
        ).fetchone()
        if row is None:
            raise NotFound(f"inode {ino} does not exist")
        return dict(zip(_STATE_KEYS, row, strict=True))

    def _insert_state(self, c: Commit, ino: InodeNo, state: dict[str, int]) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO inode_states(ino, commit_from, {_STATE_COLS}) VALUES ({_STATE_ROW})",
            (ino, c.no, *(state[k] for k in _STATE_KEYS)),
        )

    def _change_state(self, c: Commit, ino: InodeNo, **changes: int) -> dict[str, int]:
        state = self._current_state(ino)
        state.update(changes)
        self._insert_state(c, ino, state)
        return state

    def _add_dirent(self, c: Commit, parent: InodeNo, name: bytes, ino: InodeNo) -> None:
        self._db.execute(
            "INSERT INTO dirents(parent, name, ino, commit_from, commit_to) VALUES (?, ?, ?, ?, ?)",
            (parent, name, ino, c.no, LIVE),
        )

    def _end_dirent(self, c: Commit, dirent_id: int) -> None:
        self._db.execute("UPDATE dirents SET commit_to = ? WHERE id = ?", (c.no, dirent_id))

    def _touch_dir(self, c: Commit, parent: InodeNo, subdirs: int = 0) -> None:
        """The entries of `parent` changed, and it gained (or with a negative `subdirs` lost) subdirectories."""
        state = self._current_state(parent)
        state.update(mtime_ns=c.time_ns, ctime_ns=c.time_ns, subdirs=state["subdirs"] + subdirs)
        self._insert_state(c, parent, state)

    def _check_new_name(self, parent: InodeNo, name: bytes) -> None:
        if len(name) > NAME_MAX:
            raise NameTooLong(f"name of {len(name)} bytes is longer than {NAME_MAX}")
        if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
            raise InvalidArgument(f"invalid name {name!r}")
        if self._live_dirent(parent, name) is not None:
            raise Exists(f"{name!r} exists in directory {parent}")

    def _require_dir(self, ino: InodeNo) -> dict[str, int]:
        """The current state of directory `ino` (NotADirectory if it is none)."""
        state = self._current_state(ino)
        if not stat.S_ISDIR(state["mode"]):
            raise NotADirectory(f"inode {ino} is not a directory")
        return state

    def create(
        self, parent: InodeNo, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0, target: bytes | None = None
    ) -> Attr:
        """Create a file, directory, symlink (`target`), fifo, socket or device node named `name`.

        In a set-group-ID directory it gets the directory's group instead of `gid` (and a directory the bit).
        """
        with self._write() as c:
            ino = self._create(c, parent, name, mode, uid, gid, rdev, target)
        return self.attr(ino)

    def _create(
        self, c: Commit, parent: InodeNo, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0,
        target: bytes | None = None, lineage: int | None = None,
    ) -> InodeNo:
        dir_state = self._require_dir(parent)
        self._check_new_name(parent, name)
        if dir_state["mode"] & stat.S_ISGID:
            # A set-group-ID directory gives what is made in it its group, and new subdirectories its
            # bit, as Linux filesystems do (the kernel leaves that to us): shared group directories.
            gid = dir_state["gid"]
            mode |= stat.S_ISGID if stat.S_ISDIR(mode) else 0
        ino = InodeNo(self._db.execute("SELECT coalesce(max(ino), 0) + 1 FROM inodes").fetchone()[0])
        self._db.execute("INSERT INTO inodes(ino, kind, created, target, lineage) VALUES (?, ?, ?, ?, ?)",
                         (ino, stat.S_IFMT(mode), c.no, target, ino if lineage is None else lineage))
        size = len(target) if target is not None else 0
        self._insert_state(c, ino, dict(mode=mode, uid=uid, gid=gid, rdev=rdev, size=size,
                                        atime_ns=c.time_ns, mtime_ns=c.time_ns, ctime_ns=c.time_ns,
                                        version=0, subdirs=0))
        self._add_dirent(c, parent, name, ino)
        self._touch_dir(c, parent, subdirs=int(stat.S_ISDIR(mode)))
        return ino

    def link(self, ino: InodeNo, parent: InodeNo, name: bytes) -> Attr:
        with self._write() as c:
            if stat.S_ISDIR(self._current_state(ino)["mode"]):
                raise NotPermitted("hard links to directories are not allowed")
            self._require_dir(parent)
            self._check_new_name(parent, name)
            self._add_dirent(c, parent, name, ino)
            self._change_state(c, ino, ctime_ns=c.time_ns)
            self._touch_dir(c, parent)
        return self.attr(ino)

    def unlink(self, parent: InodeNo, name: bytes, *, rmdir: bool = False) -> InodeNo:
        """Remove a name (unlink, or rmdir when `rmdir`); returns the inode it pointed to."""
        with self._write() as c:
            found = self._live_dirent(parent, name)
            if found is None:
                raise NotFound(f"{name!r} not found in directory {parent}")
            dirent_id, ino = found
            is_dir = stat.S_ISDIR(self._current_state(ino)["mode"])
            if rmdir and not is_dir:
                raise NotADirectory(f"{name!r} is not a directory")
            if not rmdir and is_dir:
                raise IsADirectory(f"{name!r} is a directory")
            if is_dir and self._has_children(ino):
                raise NotEmpty(f"directory {name!r} is not empty")
            self._end_dirent(c, dirent_id)
            self._change_state(c, ino, ctime_ns=c.time_ns)
            self._touch_dir(c, parent, subdirs=-int(is_dir))
            return ino

    def _has_children(self, ino: InodeNo) -> bool:
        return self._db.execute(
            "SELECT 1 FROM dirents WHERE parent = ? AND commit_to = ? LIMIT 1", (ino, LIVE)
        ).fetchone() is not None

    def _is_ancestor(self, maybe_ancestor: InodeNo, ino: InodeNo) -> bool:
        while True:
            if ino == maybe_ancestor:
                return True
            if ino == ROOT_INO:
                return False
            row = self._db.execute(
                "SELECT parent FROM dirents WHERE ino = ? AND commit_to = ? LIMIT 1", (ino, LIVE)
            ).fetchone()
            if row is None:
                return False
            ino = InodeNo(int(row[0]))

    def rename(
        self, old_parent: InodeNo, old_name: bytes, new_parent: InodeNo, new_name: bytes,
        *, noreplace: bool = False, exchange: bool = False,
    ) -> InodeNo | None:
        """Rename with POSIX semantics (plus RENAME_NOREPLACE / RENAME_EXCHANGE).

        Returns the inode whose name was replaced (it may now have no names left), else None.
        """
        with self._write() as c:
            src = self._live_dirent(old_parent, old_name)
            if src is None:
                raise NotFound(f"{old_name!r} not found in directory {old_parent}")
            self._require_dir(new_parent)
            dst = self._live_dirent(new_parent, new_name)
            src_dir = stat.S_ISDIR(self._current_state(src[1])["mode"])
            if exchange:
                if dst is None:
                    raise NotFound(f"{new_name!r} not found in directory {new_parent}")
                if dst[1] == src[1]:
                    return None  # one inode under both names (or one name twice): nothing to swap
                dst_dir = stat.S_ISDIR(self._current_state(dst[1])["mode"])
                if (src_dir and self._is_ancestor(src[1], new_parent)) or (
                    dst_dir and self._is_ancestor(dst[1], old_parent)
                ):
                    raise InvalidArgument("cannot move a directory into itself")
                self._end_dirent(c, src[0])
                self._end_dirent(c, dst[0])
                self._add_dirent(c, old_parent, old_name, dst[1])
                self._add_dirent(c, new_parent, new_name, src[1])
                for ino in (src[1], dst[1]):
                    self._change_state(c, ino, ctime_ns=c.time_ns)
                self._touch_parents(c, old_parent, new_parent, moved_dirs=int(src_dir) - int(dst_dir))
                return None
            if len(new_name) > NAME_MAX:
                raise NameTooLong(f"name of {len(new_name)} bytes is longer than {NAME_MAX}")
            if src_dir and self._is_ancestor(src[1], new_parent):
                raise InvalidArgument("cannot move a directory into itself")
            replaced = None
            if dst is not None:
                if noreplace:
                    raise Exists(f"{new_name!r} exists in directory {new_parent}")
                if dst[1] == src[1]:
                    return None  # both names are links to one inode: POSIX says do nothing
                dst_dir = stat.S_ISDIR(self._current_state(dst[1])["mode"])
                if src_dir and not dst_dir:
                    raise NotADirectory(f"{new_name!r} is not a directory")
                if dst_dir and not src_dir:
                    raise IsADirectory(f"{new_name!r} is a directory")
                if dst_dir and self._has_children(dst[1]):
                    raise NotEmpty(f"directory {new_name!r} is not empty")
                self._end_dirent(c, dst[0])
                self._change_state(c, dst[1], ctime_ns=c.time_ns)
                replaced = dst[1]
                if not src_dir and self._continues_history(src[1], dst[1]):
                    self._join_lineage(src[1], dst[1])
            else:
                self._check_new_name(new_parent, new_name)
            self._end_dirent(c, src[0])
            self._add_dirent(c, new_parent, new_name, src[1])
            self._change_state(c, src[1], ctime_ns=c.time_ns)
            self._touch_parents(c, old_parent, new_parent, moved_dirs=int(src_dir),
                                replaced_dirs=int(replaced is not None and src_dir))
            return replaced

    def _touch_parents(
        self, c: Commit, old_parent: InodeNo, new_parent: InodeNo, *, moved_dirs: int, replaced_dirs: int = 0
    ) -> None:
        """After a rename: `moved_dirs` more directories now in `new_parent` than before in `old_parent`
        (negative when an exchange moved one the other way), `replaced_dirs` ended in `new_parent`."""
        change = dict.fromkeys((old_parent, new_parent), 0)  # one key when both are the same directory
        change[old_parent] -= moved_dirs
        change[new_parent] += moved_dirs - replaced_dirs
        for parent, subdirs in change.items():
            self._touch_dir(c, parent, subdirs)

    def _continues_history(self, src: InodeNo, dst: InodeNo) -> bool:
        """Whether renaming regular file `src` over `dst` is a save of `dst` (its history goes on)."""
        if not stat.S_ISREG(self._current_state(src)["mode"]) or not stat.S_ISREG(self._current_state(dst)["mode"]):
            return False
        links = self._db.execute("SELECT count(*) FROM dirents WHERE ino = ? AND commit_to = ?", (dst, LIVE))
        return int(links.fetchone()[0]) == 0  # the replaced name was its last one (already ended)

    def _join_lineage(self, src: InodeNo, dst: InodeNo) -> None:
        """Renumber src's lineage after dst's last version and merge it into dst's lineage."""
        (src_lineage,) = self._db.execute("SELECT lineage FROM inodes WHERE ino = ?", (src,)).fetchone()
        (dst_lineage,) = self._db.execute("SELECT lineage FROM inodes WHERE ino = ?", (dst,)).fetchone()
        if src_lineage == dst_lineage:
            return
        (last,) = self._db.execute("SELECT coalesce(max(vno), 0) FROM versions WHERE lineage = ?",
                                   (dst_lineage,)).fetchone()
        self._db.execute("UPDATE versions SET lineage = ?, vno = vno + ? WHERE lineage = ?",
                         (dst_lineage, last, src_lineage))
        self._db.execute("UPDATE inodes SET lineage = ? WHERE lineage = ?", (dst_lineage, src_lineage))

    def set_attr(
        self, ino: InodeNo, *, mode: int | None = None, uid: int | None = None, gid: int | None = None,
        atime_ns: int | None = None, mtime_ns: int | None = None,
    ) -> Attr:
        """Change metadata (a new state row: part of time travel, not a content version)."""
        with self._write() as c:
            changes: dict[str, int] = {"ctime_ns": c.time_ns}
            if mode is not None:
                changes["mode"] = (self._current_state(ino)["mode"] & stat.S_IFMT(0o170000)) | stat.S_IMODE(mode)
            for key, value in (("uid", uid), ("gid", gid), ("atime_ns", atime_ns), ("mtime_ns", mtime_ns)):
                if value is not None:
                    changes[key] = value
            self._change_state(c, ino, **changes)
        return self.attr(ino)

    # -- versions ------------------------------------------------------------------------------
    def has_chunk(self, chunk_id: ChunkId) -> bool:
        return self._one("SELECT 1 FROM chunks WHERE id = ?", (chunk_id,)) is not None

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
        with self._write(durable=durable, time_ns=items[0][3] if items else None) as first:
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
        state = self._change_state(c, ino, size=size, version=int(cur.lastrowid or 0), mtime_ns=mtime_ns,
                                   ctime_ns=c.time_ns)
        return Version(ino, vno, c.no, c.time_ns, size, content_hash, chunks, mtime_ns, origin, state["mode"],
                       state["uid"], state["gid"])

    def bulk_create_files(
        self, parent: InodeNo, files: Sequence[tuple[bytes, Sequence[Ingested]]], *, mode: int, uid: int,
        gid: int, origin: str = "write",
    ) -> list[InodeNo]:
        """Create many regular files in `parent`, each with its content versions, in one transaction.

        For imports and for building large catalogs (benchmarks), where one transaction per `create`
        and `commit_version` is far too slow. `files` holds (name, contents): the contents become
        versions 1, 2, ... of that file, as `commit_version` would record them (their chunks must be
        durable already). Everything is made by one commit, so the versions of a file share its commit
        number and the file's one state points to its last version; names are checked as by `create`.

        Returns:
            The new files' inodes, in the order of `files`.
        """
        if not stat.S_ISREG(mode):
            raise InvalidArgument("bulk_create_files creates regular files only")
        with self._write() as c:
            self._require_dir(parent)
            names = set()
            for name, _ in files:
                self._check_new_name(parent, name)
                if name in names:
                    raise Exists(f"{name!r} is given twice")
                names.add(name)
            # Inode numbers as SQLite would assign them (max + 1): the write lock is held.
            first = int(self._db.execute("SELECT coalesce(max(ino), 0) + 1 FROM inodes").fetchone()[0])
            inos = [InodeNo(first + i) for i in range(len(files))]
            t = c.time_ns
            locations = {loc.chunk_id: loc for _, contents in files for ing in contents for loc in ing.new}
            blobs = {id(ing): encode_chunk_list(ing.chunks) for _, contents in files for ing in contents}
            db = self._db
            db.executemany(
                "INSERT OR IGNORE INTO chunks(id, pack, offset, codec, stored_len, plain_len)"
                " VALUES (?,?,?,?,?,?)",
                [(x.chunk_id, x.pack, x.offset, x.codec, x.stored_len, x.plain_len)
                 for x in locations.values()],
            )
            db.executemany("INSERT INTO inodes(ino, kind, created, lineage) VALUES (?, ?, ?, ?)",
                           [(ino, stat.S_IFREG, c.no, ino) for ino in inos])
            # Version ids as SQLite assigns them (max + 1, in insertion order), so states can point to them.
            next_id = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM versions").fetchone()[0])
            rows, last_ids = [], []
            for ino, (_, contents) in zip(inos, files, strict=True):
                for vno, ing in enumerate(contents, 1):
                    rows.append((next_id, ino, ino, vno, c.no, ing.size, ing.content_hash, blobs[id(ing)], t, origin))
                    next_id += 1
                last_ids.append(next_id - 1 if contents else 0)
            db.executemany(
                "INSERT INTO versions(id, ino, lineage, vno, commit_no, size, hash, chunks, mtime_ns, origin)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            db.executemany(
                f"INSERT INTO inode_states(ino, commit_from, {_STATE_COLS}) VALUES ({_STATE_ROW})",
                [(ino, c.no, mode, uid, gid, 0, contents[-1].size if contents else 0, t, t, t, version, 0)
                 for ino, (_, contents), version in zip(inos, files, last_ids, strict=True)],
            )
            db.executemany(
                "INSERT INTO dirents(parent, name, ino, commit_from, commit_to) VALUES (?, ?, ?, ?, ?)",
                [(parent, name, ino, c.no, LIVE) for ino, (name, _) in zip(inos, files, strict=True)],
            )
            self._touch_dir(c, parent)
        return inos

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

    def version_by_hash(self, content_hash: bytes) -> Version | None:
        row = self._one(f"SELECT {self._VERSION_COLS} WHERE v.hash = ? LIMIT 1", (content_hash,))
        return self._version(row) if row else None

    def hashes_with_prefix(self, prefix: bytes, limit: int = 2) -> list[bytes]:
        """Distinct content hashes starting with `prefix` (an index range scan), at most `limit`."""
        rows = self._all("SELECT DISTINCT hash FROM versions WHERE hash >= ? AND hash <= ? ORDER BY hash LIMIT ?",
                         (prefix, prefix + b"\xff" * max(0, 32 - len(prefix)), limit))
        return [bytes(r[0]) for r in rows]

    # -- bringing history back -------------------------------------------------------------------
    def commit_existing(self, ino: InodeNo, version: Version, *, origin: str = "restore") -> Version:
        """Make the content of `version` (of any file) the next version of `ino`.

        The new version reuses the old one's chunk list: no data is copied, and history is not
        rewritten (the old version keeps its number; the new one is numbered after `ino`'s last).
        """
        with self._write() as c:
            if not stat.S_ISREG(self._current_state(ino)["mode"]):
                raise InvalidArgument(f"inode {ino} is not a regular file")
            return self._insert_version(c, ino, version.size, version.hash, version.chunks, c.time_ns, origin)

    def restore_file(
        self, parent: InodeNo, name: bytes, version: Version | None, *, mode: int, uid: int, gid: int,
        origin: str = "restore",
    ) -> Attr:
        """Create regular file `name` holding `version`'s content (None: empty), in one transaction.

        The new file continues the history `version` belongs to when no file with a live name carries
        that history on (a deleted file brought back); otherwise it starts its own.
        """
        with self._write() as c:
            lineage = None
            if version is not None:
                (old,) = self._db.execute("SELECT lineage FROM inodes WHERE ino = ?", (version.ino,)).fetchone()
                carried_on = self._db.execute(
                    "SELECT 1 FROM inodes i JOIN dirents d ON d.ino = i.ino WHERE i.lineage = ? AND d.commit_to = ?"
                    " LIMIT 1", (old, LIVE)).fetchone()
                lineage = None if carried_on else int(old)
            ino = self._create(c, parent, name, stat.S_IFREG | stat.S_IMODE(mode), uid, gid, lineage=lineage)
            if version is not None:
                self._insert_version(c, ino, version.size, version.hash, version.chunks, c.time_ns, origin)
        return self.attr(ino)

    # -- history of paths and trees ----------------------------------------------------------------
    def path_spans(self, names: Sequence[bytes]) -> list[tuple[InodeNo, int, int]]:
        """Every (inode, first, end): the path `names` (from the root) led to that inode in commits [first, end).

        Sorted by end, so the last span is the latest time the path existed (end is LIVE while it does).
        Each step is an indexed lookup of (parent, name).
        """
        spans: list[tuple[InodeNo, int, int]] = [(ROOT_INO, 1, LIVE)]
        with self._lock:
            for name in names:
                found = []
                for parent, lo, hi in spans:
                    for ino, first, end in self._db.execute(
                        "SELECT ino, commit_from, commit_to FROM dirents WHERE parent = ? AND name = ?"
                        " AND commit_from < ? AND commit_to > ?", (parent, name, hi, lo),
                    ):
                        found.append((InodeNo(int(ino)), max(lo, int(first)), min(hi, int(end))))
                spans = found
        return sorted(spans, key=lambda s: (s[2], s[1]))

    def tree(self, at: int) -> list[TreeEntry]:
        """Every name in the tree at commit `at` (one scan of the entries that held then), parents first."""
        rows = self._all(
            "WITH held(parent, name, ino) AS (SELECT parent, name, ino FROM dirents"
            "  WHERE commit_from <= ? AND commit_to > ?)"
            " SELECT h.parent, h.name, h.ino, s.mode, s.size, v.hash, i.target FROM held h"
            " JOIN inodes i ON i.ino = h.ino"
            " JOIN inode_states s ON s.ino = h.ino AND s.commit_from ="
            "  (SELECT max(commit_from) FROM inode_states WHERE ino = h.ino AND commit_from <= ?)"
            " LEFT JOIN versions v ON v.id = s.version",
            (at, min(at, LIVE - 1), at),
        )
        children: dict[int, list[Any]] = {}
        for row in rows:
            children.setdefault(int(row[0]), []).append(row)
        out: list[TreeEntry] = []
        todo: list[tuple[int, bytes]] = [(ROOT_INO, b"")]
        while todo:
            parent, prefix = todo.pop()
            for _, name, ino, mode, size, hash_, target in sorted(children.get(parent, ()), key=lambda r: r[1]):
                path = prefix + bytes(name)
                out.append(TreeEntry(path, InodeNo(int(ino)), int(mode), int(size),
                                     None if hash_ is None else bytes(hash_),
                                     None if target is None else bytes(target)))
                if stat.S_ISDIR(mode):
                    todo.append((int(ino), path + b"/"))
        return out

    def tree_stats(self, at: int) -> tuple[int, int]:
        """(regular files, their total size in bytes) in the tree at commit `at`; hard links count once."""
        row = self._one(
            "WITH f(ino) AS (SELECT DISTINCT d.ino FROM dirents d JOIN inodes i ON i.ino = d.ino"
            "  WHERE i.kind = ? AND d.commit_from <= ? AND d.commit_to > ?)"
            " SELECT count(*), coalesce(sum((SELECT size FROM inode_states WHERE ino = f.ino AND commit_from <= ?"
            "  ORDER BY commit_from DESC LIMIT 1)), 0) FROM f",
            (stat.S_IFREG, at, min(at, LIVE - 1), at),
        )
        return int(row[0]), int(row[1])

    # -- extended attributes ---------------------------------------------------------------------
    def getxattr(self, ino: InodeNo, name: bytes, at: int = LIVE) -> bytes:
        row = self._one(
            "SELECT value, commit_to FROM xattrs WHERE ino = ? AND name = ? AND commit_from <= ?"
            " ORDER BY commit_from DESC LIMIT 1",
            (ino, name, at),
        )
        if row is None or not _holds(int(row[1]), at):
            raise NoData(f"no attribute {name!r}")
        return bytes(row[0])

    def listxattr(self, ino: InodeNo, at: int = LIVE) -> list[bytes]:
        rows = self._all(
            "SELECT name FROM xattrs WHERE ino = ? AND commit_to > ? AND commit_from <= ? ORDER BY name",
            (ino, min(at, LIVE - 1), at),  # at LIVE, rows with commit_to = LIVE hold
        )
        return [bytes(r[0]) for r in rows]

    def setxattr(self, ino: InodeNo, name: bytes, value: bytes, *, create: bool = False, replace: bool = False) -> None:
        with self._write() as c:
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
        with self._write() as c:
            n = self._db.execute(
                "UPDATE xattrs SET commit_to = ? WHERE ino = ? AND name = ? AND commit_to = ?", (c.no, ino, name, LIVE)
            ).rowcount
            if n == 0:
                raise NoData(f"no attribute {name!r}")
            self._change_state(c, ino, ctime_ns=c.time_ns)

    # -- consistency -----------------------------------------------------------------------------
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

    # -- retention and garbage collection ----------------------------------------------------------
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


def _is_text(name: str) -> bool:
    """Whether `name` can be a snapshot name: snapshot names are UTF-8 TEXT, and a str decoded from a
    path's raw bytes (surrogate escapes) names none (SQLite could not even bind it)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a catalog of an older schema version up to SCHEMA_VERSION, each step in one transaction.

    The version is read again under the write lock: another process may have upgraded it meanwhile.
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if version >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            # Statement by statement: executescript would commit first, outside this transaction.
            for statement in filter(str.strip, MIGRATIONS[version + 1].split(";")):
                conn.execute(statement)
            conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _holds(commit_to: int, at: int) -> bool:
    """Whether a row ending at `commit_to` still holds at commit `at` (at LIVE: whether it is live)."""
    return commit_to > at or commit_to == LIVE


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL survives a killed process (the WAL is in the OS); fsync'd commits switch to FULL.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    # Read pages through a mapping of the file (up to 2 GiB, the usual build limit) rather than read() calls
    # into the 64 MiB cache: in a catalog far larger than that cache (1M files, 5M versions: ~1.1 GiB)
    # random point queries ran 15-40% faster (scripts/bench-store). SQLite still writes with write().
    conn.execute("PRAGMA mmap_size = 2147418112")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn
