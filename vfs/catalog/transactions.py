"""The one connection every part of the catalog shares, and its transactions.

Every mutating method is one transaction that first inserts a `commits` row (`_write`); its number
(`CommitNo`) then names the new state of the whole tree. Bookkeeping that changes no tree (meta, remote
packs) uses `_plain_write`. One lock guards the connection, so the trio loop may call the catalog inline
while ingest threads call it too; transactions are short.

Tree edits may instead join the open *batch* (`_batched_write`, see `vfs.catalog.journal`): one
transaction left open across calls, each edit in it a commit of its own, journalled so that it survives a
killed process. Every other write commits the batch first (`commit_batch`), so commits land in the order they
were made; this connection's reads see the batch, other connections see it once committed.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vfs.catalog.journal import Edit, EditJournal, read_journal
from vfs.catalog.rows import Commit
from vfs.errors import NoSpace, VfsError
from vfs.types import Attr, CommitNo, InodeNo

log = logging.getLogger(__name__)

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
        # Inodes whose state the open `exact` write transaction changed, each with its new attributes
        # when its state row alone tells them (see `States._insert_state`); None outside one (`_write`).
        self._touched: dict[InodeNo, Attr | None] | None = None
        self._last_time_ns = self._db.execute("SELECT coalesce(max(time_ns), 0) FROM commits").fetchone()[0]
        self._tx_last_time_ns = self._last_time_ns  # the newest commit time in the open transaction
        self._journal = EditJournal(path.with_name(path.name + "-edits"))
        self.batched = 0  # edits in the open batch (0: none open)
        # Called after each edit joins the batch: whoever keeps a batch open must commit it soon (the
        # mount's committer), or it would hold SQLite's write lock until the next other write.
        self.on_batched: Callable[[], None] | None = None

    def _last_commit_no(self) -> int:
        return int(self._db.execute("SELECT coalesce(max(commit_no), 0) FROM commits").fetchone()[0])

    @contextmanager
    def _batched_write(self) -> Iterator[Commit]:
        """An edit's commit in the open batch (opened if none is): `exact` as in `_write`.

        The caller journals the edit (`_journal_edit`) before the block ends. A failure undoes this edit
        only; a failure to commit the batch is `commit_batch`'s.

        Without a savepoint per edit (it cost a quarter of a create's time): an edit that fails before
        it changed a row (most failures: a name that exists, a directory not empty) drops its commit row
        only; one that changed rows rolls the batch back and makes it again from the journal, which
        holds every edit of the batch but this one.
        """
        with self._lock:
            db = self._db
            if not self.batched:
                db.execute("BEGIN IMMEDIATE")
                try:
                    self._journal.begin(self._last_commit_no())
                except OSError as e:
                    db.execute("ROLLBACK")
                    raise _os_error(e) from None
                self._tx_last_time_ns = self._last_time_ns
            self._touched = {}
            ok = False
            made: Commit | None = None
            changes = 0
            try:
                made = self._add_commit(None)
                changes = db.total_changes  # (counts completed statements only: a failed one undoes itself)
                yield made
                self._last_time_ns = self._tx_last_time_ns
                self.batched += 1
                ok = True
            except BaseException as e:
                if db.in_transaction and (made is None or db.total_changes == changes):
                    if made is not None:
                        db.execute("DELETE FROM commits WHERE commit_no = ?", (made.no,))
                    if not self.batched:
                        db.execute("ROLLBACK")
                else:  # the whole batch must go (or SQLite rolled it back: a full disk); make it again
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    if self.batched:
                        self.batched = 0
                        self._replay_journal(keep_open=True)
                if isinstance(e, sqlite3.OperationalError) and "full" in str(e):
                    raise NoSpace("no space left on the store's disk for the catalog") from None
                raise
            finally:
                self._end_touched(ok)
        if self.on_batched is not None:
            self.on_batched()

    def _end_touched(self, ok: bool) -> None:
        """The write transaction ended (committed when `ok`): bring the cached live attributes up to date."""
        touched, self._touched = self._touched, None
        if touched is None:
            self._live_attrs.clear()
            return
        for ino, attr in touched.items():
            if ok and attr is not None and self.cache_live_attrs:
                self._cache_attr(attr)
            else:
                self._live_attrs.pop(ino, None)

    def _cache_attr(self, attr: Attr) -> None:
        if len(self._live_attrs) >= 100_000:
            self._live_attrs.clear()
        self._live_attrs[attr.ino] = attr

    def _journal_edit(self, edit: Edit) -> None:
        try:
            self._journal.add(edit)
        except OSError as e:
            raise _os_error(e) from None

    def commit_batch(self) -> None:
        """Commit the open batch of edits, if any (every other write does it first).

        Raises:
            NoSpace: the disk is full. The batch stays open (its edits were undone and made again
                from the journal), for the next try.
        """
        with self._lock:
            if not self.batched:
                return
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                log.error("committing %d batched edit(s) failed (%s); retried from their journal", self.batched, e)
                self.batched = 0
                self._replay_journal(keep_open=True)
                if "full" in str(e):
                    raise NoSpace("no space left on the store's disk for the catalog") from None
                raise
            self.batched = 0
            self._journal.clear()

    def replay_edits(self) -> int:
        """Commit the edits a killed process journalled but did not commit; how many (at open, by the
        holder of the store lock only)."""
        with self._lock:
            self.commit_batch()
            legacy = self.path.with_name(self.path.name + "-deletes")  # its name when it held deletes only
            if legacy.exists():  # left by an older version (this one renames it here)
                legacy.replace(self._journal.path)
            replayed = self._replay_journal(keep_open=False)
            self._journal.clear()
            return replayed

    def _replay_journal(self, *, keep_open: bool) -> int:
        """Make the journalled edits again, if no commit recorded them, in one transaction: committed,
        or with `keep_open` left open as the batch. Each is a commit of its own, as it was.

        They were made in this order on the state the header names, so each succeeds again; one that
        does not (a defect) is logged and left out rather than keeping the store from opening.
        """
        found = read_journal(self._journal.path)
        if found is None:
            return 0
        last_commit, edits = found
        if not edits or self._last_commit_no() != last_commit:
            return 0  # committed already
        # The cached attributes may be those of the batch that was rolled back: the edits are made
        # again from the rows alone (and whatever edit failed meanwhile caches nothing either).
        self._live_attrs.clear()
        self._touched = None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._tx_last_time_ns = self._last_time_ns
            for edit in edits:
                self._db.execute("SAVEPOINT replayed")
                try:
                    self._replay_edit(self._add_commit(None), edit)
                except VfsError as e:
                    self._db.execute("ROLLBACK TO replayed")
                    log.error("a journalled %s in directory %d could not be made again: %s",
                              edit.kind.name.lower(), edit.parent, e)
                self._db.execute("RELEASE replayed")
            if not keep_open:
                self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._live_attrs.clear()
        self._last_time_ns = self._tx_last_time_ns
        if keep_open:
            self.batched = len(edits)
        return len(edits)

    def _replay_edit(self, c: Commit, edit: Edit) -> None:
        """Make a journalled edit again in commit `c` (see `TreeEdits`)."""
        raise NotImplementedError

    @contextmanager
    def _plain_write(self) -> Iterator[None]:
        """A transaction that is no commit of the tree (meta, remote bookkeeping)."""
        with self._lock:
            self.commit_batch()
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
        inodes whose state rows the transaction added (`_insert_state`), which are cached anew instead
        when their state rows tell them whole. `exact` is for transactions
        that change attributes only that way, with every name added or ended paired with a new state
        row of its inode (link counts); one that changes other rows sets `_touched` to None.
        """
        with self._lock:
            self.commit_batch()  # commits land in the order they were made
            self._touched = {} if exact else None
            db = self._db
            if durable:
                db.execute("PRAGMA synchronous = FULL")
            db.execute("BEGIN IMMEDIATE")
            ok = False
            try:
                self._tx_last_time_ns = self._last_time_ns
                yield self._add_commit(time_ns)
                db.execute("COMMIT")
                self._last_time_ns = self._tx_last_time_ns
                ok = True
            except BaseException as e:
                if db.in_transaction:  # SQLite may have rolled back already (a full disk)
                    db.execute("ROLLBACK")
                if isinstance(e, sqlite3.OperationalError) and "full" in str(e):
                    raise NoSpace("no space left on the store's disk for the catalog") from None
                raise
            finally:
                self._end_touched(ok)
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


def _os_error(e: OSError) -> Exception:
    if e.errno == errno.ENOSPC:
        return NoSpace("no space left on the store's disk for the edit journal")
    return e
