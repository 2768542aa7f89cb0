"""The one connection every part of the catalog shares, and its transactions.

Every mutating method is one transaction that first inserts a `commits` row (`_write`); its number
(`CommitNo`) then names the new state of the whole tree. Bookkeeping that changes no tree (meta, remote
packs) uses `_plain_write`. One lock guards the connection, so the trio loop may call the catalog inline
while ingest threads call it too; transactions are short.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vfs.catalog.rows import Commit
from vfs.errors import NoSpace
from vfs.types import Attr, CommitNo, InodeNo

_CLOCK_REALTIME_COARSE = 5  # Linux's clock id; Python's time module does not name it


def now_ns() -> int:
    """The clock of commit times (also for times given to commits, such as a save's). The kernel stamps
    file times with its coarse clock: a file created and then written in the same tick then keeps its
    mtime, which spares a SETATTR round trip at close."""
    return time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)


class Transactions:
    """The base of every part of `Catalog`: the connection, its lock, and the transaction helpers."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, cache_live_attrs: bool = False) -> None:
        self._db = conn
        self.path = path
        self._lock = threading.RLock()
        # Live attributes by inode, for the holder of the store lock only (no other process writes
        # then): every request of a mount asks for them. Emptied by every write transaction.
        self.cache_live_attrs = cache_live_attrs
        self._live_attrs: dict[InodeNo, Attr] = {}
        # Attribute names no row of `xattrs` has (of any commit), for the same holder only (see
        # Xattrs.xattr_name_used); a setxattr of that name takes it out.
        self._unused_xattr_names: set[bytes] = set()
        # Inodes whose state the open `exact` write transaction changed; None outside one (see `_write`).
        self._touched: set[InodeNo] | None = None
        self._last_time_ns = self._db.execute("SELECT coalesce(max(time_ns), 0) FROM commits").fetchone()[0]
        self._tx_last_time_ns = self._last_time_ns  # the newest commit time in the open transaction

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
    def _write(self, *, durable: bool = False, time_ns: int | None = None, exact: bool = False) -> Iterator[Commit]:
        """One transaction with a new commit number, made now or at `time_ns` (see `_add_commit`);
        `durable` also fsyncs the WAL at commit.

        The cached live attributes are dropped afterwards: all of them, or with `exact` only those of the
        inodes whose state rows the transaction added (`_insert_state`). `exact` is for transactions
        that change attributes only that way, with every name added or ended paired with a new state
        row of its inode (link counts); one that changes other rows sets `_touched` to None.
        """
        with self._lock:
            self._touched = set() if exact else None
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
                if self._touched is None:
                    self._live_attrs.clear()
                else:
                    for ino in self._touched:
                        self._live_attrs.pop(ino, None)
                    self._touched = None
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
