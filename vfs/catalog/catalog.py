"""Catalog: the store's SQLite catalog as one object, opened or created here.

`Catalog` joins the parts of the catalog (each a module of this package with one job, all over one
connection; see the package docstring). This module opens and creates the database file, upgrades
its schema, and controls what concerns the file as a whole: WAL checkpoints, fsync, meta values and
consistent copies.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from pathlib import Path

from vfs.catalog import copies
from vfs.catalog.check import Checks
from vfs.catalog.edits import TreeEdits
from vfs.catalog.history import History
from vfs.catalog.namespace import Namespace
from vfs.catalog.remote_packs import RemotePacks
from vfs.catalog.restore import Restore
from vfs.catalog.retention import Retention
from vfs.catalog.schema import MIGRATIONS, REMOTE_TABLES, SCHEMA_VERSION, TABLES
from vfs.catalog.states import NAME_MAX as NAME_MAX  # re-exported: fs/ checks names against it
from vfs.catalog.states import States
from vfs.catalog.timeline import Timeline
from vfs.catalog.transactions import now_ns as now_ns  # re-exported: fs/ dates saves by it
from vfs.catalog.versions import Versions
from vfs.catalog.xattrs import Xattrs
from vfs.errors import NotAStore, SchemaTooNew, StoreError
from vfs.fsutil import PRIVATE_FILE, fsync_path
from vfs.types import ROOT_INO, ChunkId

CATALOG_FILE = "catalog.db"


class Catalog(Restore, TreeEdits, Namespace, Versions, Xattrs, States, History, Timeline, Checks, Retention,
              RemotePacks):
    """The catalog of one store. Reading methods take `at` (a commit number; LIVE means the present).

    Thread-safe: one connection guarded by a lock, short transactions only, so the trio loop may call
    it inline while ingest threads commit versions. `cache_live_attrs`: keep live attributes in memory,
    for the holder of the store lock only (no other process writes then).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, cache_live_attrs: bool = False) -> None:
        super().__init__(conn, path, cache_live_attrs=cache_live_attrs)
        self._checkpointer: sqlite3.Connection | None = None
        self._chunk_reader: sqlite3.Connection | None = None
        self._chunk_reader_lock = threading.Lock()  # ingest threads share it

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def initialize(
        cls, path: Path, store_id: str, config: dict[str, object], uid: int, gid: int, *,
        cache_live_attrs: bool = False,
    ) -> Catalog:
        """Create a new catalog at `path` with an empty root directory (mode 0755)."""
        path.touch(mode=PRIVATE_FILE)  # SQLite gives its -wal and -shm files the database file's mode
        conn = _connect(path)
        conn.executescript("BEGIN;" + TABLES + "COMMIT;")
        cat = cls(conn, path, cache_live_attrs=cache_live_attrs)
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
    def open(cls, path: Path, *, cache_live_attrs: bool = False) -> Catalog:
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
            return cls(conn, path, cache_live_attrs=cache_live_attrs)
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
            self.commit_batch()
            self._journal.close()
            self._close_side_connections()
            self._db.close()

    def replace_file(self, new: Path) -> None:
        """Make `new` (a complete catalog file, as `vfs.sync.pull` downloads one) this catalog's file and
        read from it from now on: a follower's refresh. The open `Catalog` object stays the one every
        part of the store holds; what it cached of the old file is dropped.

        Only for a store that writes nothing of its own (its WAL holds no transaction of value).
        """
        with self._lock:
            self._close_side_connections()
            self._db.close()
            for suffix in ("-wal", "-shm"):  # the old file's: the new one starts without
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            os.replace(new, self.path)
            fsync_path(self.path.parent)
            self._db = _connect(self.path)
            self._live_attrs.clear()
            self._unused_xattr_names.clear()
            self._last_time_ns = self._tx_last_time_ns = self._db.execute(
                "SELECT coalesce(max(time_ns), 0) FROM commits").fetchone()[0]

    def _close_side_connections(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        with self._chunk_reader_lock:
            if self._chunk_reader is not None:
                self._chunk_reader.close()
                self._chunk_reader = None

    def has_chunk(self, chunk_id: ChunkId) -> bool:
        """Whether a chunk with this id is recorded. Ingest threads ask it for every chunk they make.

        It reads through a connection of its own, so it never takes the catalog's lock: when an ingest
        thread held that lock, the trio loop mostly needed it too, and slept until the thread had let go
        of the lock and then of the GIL (8,000 such waits while 10,000 small files were created, about
        100 us each). That connection sees committed rows only, which is all there is of chunks: they
        are written by transactions that commit at once, never by the open batch of edits.
        """
        with self._chunk_reader_lock:
            if self._chunk_reader is None:
                self._chunk_reader = _connect(self.path)
            row = self._chunk_reader.execute("SELECT 1 FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        return row is not None

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
        """Make every change so far survive a power loss: commit the batch of edits, fsync the WAL."""
        self.commit_batch()
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

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole catalog at `path` (SQLite online backup; a single file).

        Slow for a big catalog: call from a thread. It reads through a connection of its own in one
        read transaction (one WAL snapshot), so it never holds the catalog's lock and writers go on.
        """
        copies.backup(self.path, path)


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
