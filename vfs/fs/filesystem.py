"""FileSystem: what the mounted tree means, independent of FUSE.

Vocabulary. A *handle* is one open() of an inode. A file with uncommitted or in-progress content has a
*staging file* `staging/<ino>` on local disk holding its whole current content; writes are plain
pwrites into it and reads of that inode come from it. Without a staging file, reads come from the
inode's committed version in the store.

Versions. When the last writable handle of a modified file is released, the inode is queued for the
*committer*, which ingests staging files in a thread (hashing and compression off the trio loop) and
commits many of them in one catalog transaction. A file that stays open and dirty is also committed
every `version_interval` seconds. Writes to an inode wait while its staging file is being ingested,
so a version is never a torn mix of two states. A version is dated when its content last changed
(the last write or truncate that reached us), not when its batch commits: a file's cached data is
written back to us while close(2) runs, so a save is dated before the close returns, and the tree
at an instant T holds every save closed before T. (Dating it at the kernel's FLUSH instead would cost
a round trip on every close of every file, read-only ones too: open+read+close of a small cached file
took 60% more daemon CPU.) A save queued but not yet committed is *unsettled*: a lookup of history
(FILE@..., DIR@TIME, user.vfs.*) first commits the unsettled saves of what it shows, so it reads its
own writes.

Durability. Staging files are the journal of uncommitted content: after `kill -9` of the daemon they
are still there (the page cache survives a process), and `recover()` at the next start commits every
one that differs from its inode's latest version. fsync(2) fsyncs the staging file and the catalog's
WAL, which makes the data survive a power loss as well.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, TypeVar

import trio

from vfs.catalog import Attr, Snapshot, Version
from vfs.catalog.catalog import NAME_MAX, now_ns
from vfs.errors import (
    FsError,
    InvalidArgument,
    IsADirectory,
    NameTooLong,
    NoData,
    NoSpace,
    NotFound,
    NotPermitted,
    NotSupported,
    ReadOnly,
    UsageError,
)
from vfs.fs import snapshots
from vfs.fs.spares import Spares
from vfs.fs.views import SnapshotList, VersionList, View, Views, is_synthetic
from vfs.fsutil import fsync_path
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

# Small files commit in large batches: one pack fsync and one transaction for all of them.
_COMMIT_BATCH = 64
_COMMIT_GATHER = 0.05  # seconds


@dataclass
class Staging:
    """The local file holding an inode's current content while it is being written."""

    fd: int
    path: Path
    size: int
    mtime_ns: int
    dirty: bool = False
    dirty_since: float = 0.0
    fsynced_dir: bool = False
    fsynced: bool = False  # fsync(2) was asked: its version must commit durably (WAL fsync'd)
    changed_ns: int = 0  # when the content last changed (now_ns's clock): the time of its version


@dataclass
class Live:
    """In-memory state of an inode that has handles or a staging file."""

    ino: InodeNo
    opens: int = 0
    writers: int = 0
    staging: Staging | None = None
    committing: trio.Event | None = None  # set while the committer ingests the staging file
    materializing: trio.Lock = field(default_factory=trio.Lock)
    busy: int = 0  # operations holding this state across an await without a handle (truncate by path)
    deleted: bool = False  # unlinked, its last name gone: uncommitted content is dropped, not committed


@dataclass
class Handle:
    ino: InodeNo
    writable: bool
    version: Version | None = None  # committed content read when there is no staging file
    pinned: bool = False  # a history view: `version` never changes


@dataclass(frozen=True)
class StatFs:
    block_size: int
    blocks: int
    blocks_free: int
    blocks_avail: int
    files: int
    files_free: int
    name_max: int


def _now() -> int:
    return time.time_ns()


def _check_name(name: bytes) -> None:
    if len(name) > NAME_MAX:
        raise NameTooLong(f"name of {len(name)} bytes is longer than {NAME_MAX}")


_UNSUPPORTED_XATTRS = (b"system.posix_acl_access", b"system.posix_acl_default", b"security.selinux")


def _check_not_acl(name: bytes) -> None:
    """POSIX ACLs and SELinux labels are not supported, as on a filesystem mounted without them.

    Storing an ACL would not enforce it and would hide a mode change: `cp -a`, `rsync -A` and tar
    set permissions through system.posix_acl_access and fall back to chmod only on EOPNOTSUPP.
    Reads answer EOPNOTSUPP too, which tells `ls -l` to stop asking for every entry of a directory
    (it asked twice per entry, a round trip each).
    """
    if name in _UNSUPPORTED_XATTRS:
        raise NotSupported("POSIX ACLs and SELinux labels are not supported")


class FileSystem:
    def __init__(self, repo: Repository, *, version_interval: float = 300.0) -> None:
        self.repo = repo
        self.catalog = repo.catalog
        self.version_interval = version_interval
        self._live: dict[InodeNo, Live] = {}
        self._handles: dict[int, Handle] = {}
        self._next_fh = 1
        # Inodes queued for the committer, in queue order: saves are numbered in the order they happened.
        self._pending: dict[InodeNo, None] = {}
        self._wakeup = trio.Event()
        self._batch_full = trio.Event()
        self._commit_lock = trio.Lock()
        self._threads = trio.CapacityLimiter(2)
        # Reads of committed content wait on the disk more than on the CPU (hashing releases the
        # GIL): more of them in flight overlap the kernel's read-ahead requests.
        self._read_threads = trio.CapacityLimiter(4)
        self.views = Views(self.catalog)
        self._spares = Spares(repo.staging)
        # Called when an inode's content changes by a path other than the kernel's own writes.
        self.invalidate: Callable[[InodeNo], None] = lambda ino: None
        # Makes the kernel write back the dirty pages it caches (writeback cache) to this filesystem.
        self.flush_kernel: Callable[[], Awaitable[None]] = trio.lowlevel.checkpoint
        # Inodes whose pages the kernel may cache although writing them here failed (see
        # _write_failed): inode -> failures, until an invalidation begun after the last one has ended.
        self._stale_pages: dict[InodeNo, int] = {}
        self._stale_wakeup = trio.Event()

    # -- lifecycle -------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work: the committer and the version-interval timer. Cancel to stop."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._committer)
            nursery.start_soon(self._interval_timer)
            nursery.start_soon(self._checkpointer)
            nursery.start_soon(self._invalidator)
            task_status.started()

    async def _committer(self) -> None:
        while True:
            await self._wakeup.wait()
            # Gather: a burst of small files then costs one pack fsync and one transaction. Waiting is
            # free for durability, since the staging files already survive a killed daemon.
            with trio.move_on_after(_COMMIT_GATHER):
                await self._batch_full.wait()
            self._wakeup = trio.Event()
            self._batch_full = trio.Event()
            if not await self.commit_pending():
                await trio.sleep(1)  # back off; what failed is still pending
                self._wakeup.set()

    async def _interval_timer(self) -> None:
        while True:
            await trio.sleep(min(self.version_interval, 30.0) / 2)
            if any(live.writers for live in self._live.values()):
                # What applications write to files they keep open may sit in the kernel's writeback
                # cache for 30 s or more, unseen by us: fetch it, or short intervals could not hold.
                await self.flush_kernel()
            cutoff = time.monotonic() - self.version_interval
            for live in list(self._live.values()):
                st = live.staging
                if st is not None and st.dirty and st.dirty_since <= cutoff:
                    self._queue(live.ino)

    async def _checkpointer(self) -> None:
        # Commits on the loop must not stall on the WAL checkpoint's fsyncs: do them here instead.
        self.catalog.defer_checkpoints()
        limiter = trio.CapacityLimiter(1)
        while True:
            await trio.sleep(1.0)
            try:
                await trio.to_thread.run_sync(self.catalog.checkpoint, limiter=limiter)
            except Exception as e:  # a full disk: the WAL keeps the data; try again later
                log.warning("catalog checkpoint failed (will retry): %s", e)
                await trio.sleep(10.0)

    async def _invalidator(self) -> None:
        limiter = trio.CapacityLimiter(1)
        while True:
            await self._stale_wakeup.wait()
            self._stale_wakeup = trio.Event()  # a write failing from here on comes round again
            for ino, failures in list(self._stale_pages.items()):
                # In a thread: the kernel first waits for the failed write-back to end, which needs
                # this loop to answer. Abandoned on cancel, as flush_kernel is: it may wait for a loop
                # that has stopped answering.
                await trio.to_thread.run_sync(self.invalidate, ino, limiter=limiter, abandon_on_cancel=True)
                if self._stale_pages.get(ino) == failures:
                    del self._stale_pages[ino]

    def kernel_cache_valid(self, ino: InodeNo) -> bool:
        """Whether the kernel may keep the pages it caches of `ino` when it is opened again: not while
        pages of a failed write may be among them (the open then drops them, before it returns)."""
        return ino not in self._stale_pages

    def _queue(self, ino: InodeNo) -> None:
        self._pending[ino] = None
        self._wakeup.set()
        if len(self._pending) >= _COMMIT_BATCH:
            self._batch_full.set()

    async def commit_pending(self, until: Collection[InodeNo] | None = None) -> bool:
        """Commit queued dirty inodes in queue order; False if a batch failed.

        All of them, also those queued meanwhile; or, given `until`, only as far as the queue holds any
        of those: a caller waiting for some saves then never waits for later ones (under a steady
        stream of closes it would wait forever), and saves still commit in the order they were made.
        """
        async with self._commit_lock:
            while self._pending and (until is None or any(ino in self._pending for ino in until)):
                batch: list[Live] = []
                while self._pending and len(batch) < _COMMIT_BATCH:
                    ino = next(iter(self._pending))
                    del self._pending[ino]
                    live = self._live.get(ino)
                    if live is not None and live.staging is not None and live.staging.dirty:
                        batch.append(live)
                if batch and not await self._commit_batch(batch):
                    return False
        return True

    async def _commit_batch(self, batch: list[Live]) -> bool:
        items: list[tuple[InodeNo, Path | str, int | None, int | None]] = []
        for live in batch:
            st = live.staging
            assert st is not None
            live.committing = trio.Event()
            st.dirty = False
            items.append((live.ino, st.path, st.mtime_ns, st.changed_ns))
        committed = False
        try:
            # Content someone fsync'd must stay durable once its staging file is gone.
            durable = any(live.staging is not None and live.staging.fsynced for live in batch)
            await trio.to_thread.run_sync(
                functools.partial(self.repo.commit_files, items, durable=durable), limiter=self._threads)
            committed = True
        except Exception:
            # The staging files hold everything written (a failed write is another matter: see
            # _write_failed), so the kernel's cached pages stay true: reads go on serving the staged
            # content, which survives a killed daemon and commits once this succeeds.
            log.exception("committing %d file(s) failed; they stay dirty and will be retried", len(items))
        finally:
            for live in batch:
                assert live.staging is not None and live.committing is not None
                if not committed:  # also when cancelled: nothing may be forgotten
                    live.staging.dirty = True
                    self._pending[live.ino] = None
                live.committing.set()
                live.committing = None
        if committed:
            for live in batch:
                self._maybe_forget_staging(live)
        return committed

    async def flush_all(self) -> bool:
        """Commit every dirty staging file, open or not; False if some could not be committed."""
        for live in self._live.values():
            if live.staging is not None and live.staging.dirty:
                self._pending[live.ino] = None
        return await self.commit_pending()

    async def close(self) -> None:
        """Commit everything and release staging files (unmount); the repository stays open.

        What cannot be committed now (a full disk) stays in staging/ and is recovered at next start.
        """
        if not await self.flush_all():
            log.error("some files could not be committed; they stay in %s for the next mount", self.repo.staging)
        for live in list(self._live.values()):
            live.opens = live.writers = 0
            if live.staging is not None and live.staging.dirty:
                os.close(live.staging.fd)  # keep the file: it is the journal of that content
                del self._live[live.ino]
            else:
                self._maybe_forget_staging(live)

    async def recover(self) -> int:
        """Commit staging files left by a killed daemon; returns how many became versions.

        One that cannot be committed for lack of space is kept as the file's uncommitted content, as
        if it had just been closed: reads are served from it and the committer retries. Refusing to
        mount instead would leave the user no way to free space through the mount.
        """

        def work() -> tuple[int, list[InodeNo]]:
            committed = 0
            no_room: list[InodeNo] = []
            for path in sorted(self.repo.staging.iterdir()):
                if path.is_dir():
                    continue  # spares
                try:
                    ino = InodeNo(int(path.name))
                    attr = self.catalog.attr(ino)
                except (ValueError, NotFound):
                    path.unlink()
                    continue
                if attr.nlink > 0:
                    current = self.catalog.version_at(ino)
                    try:
                        ingested = self.repo.ingest(path)
                        unchanged = ingested.size == 0 if current is None else current.hash == ingested.content_hash
                        if not unchanged:
                            mtime = path.stat().st_mtime_ns
                            self.catalog.commit_versions([(ino, ingested, mtime, None)], origin="recovery")
                            committed += 1
                            log.info("recovered uncommitted content of inode %d (%d bytes)", ino, ingested.size)
                    except NoSpace:
                        no_room.append(ino)
                        continue
                path.unlink()
            return committed, no_room

        committed, no_room = await trio.to_thread.run_sync(work, limiter=self._threads)
        for ino in no_room:
            self._adopt_staging(ino)
        if no_room:
            log.warning("no space to commit %d file(s) left uncommitted by an earlier daemon: they stay in %s, "
                        "are read from there, and are committed once there is room", len(no_room), self.repo.staging)
        return committed

    def _adopt_staging(self, ino: InodeNo) -> None:
        """Take a staging file left behind as `ino`'s dirty content, queued for the committer."""
        path = self.repo.staging / str(ino)
        fd = _os_call(os.open, path, os.O_RDWR | os.O_CLOEXEC)
        st = os.fstat(fd)
        live = self._get_live(ino)
        live.staging = Staging(fd, path, st.st_size, st.st_mtime_ns)
        self._mark_dirty(live, st.st_mtime_ns)
        self._queue(ino)

    # -- attributes --------------------------------------------------------------------------------
    def getattr(self, ino: InodeNo) -> Attr:
        if is_synthetic(ino):
            return self.views.attr(ino)
        attr = self.catalog.attr(ino)
        live = self._live.get(ino)
        if live is not None and live.staging is not None:
            st = live.staging
            attr = Attr(attr.ino, attr.mode, attr.uid, attr.gid, attr.rdev, st.size, attr.atime_ns,
                        st.mtime_ns, attr.ctime_ns, attr.vno, attr.nlink)
        return attr

    async def lookup(self, parent: InodeNo, name: bytes) -> Attr:
        """A real name, else a hidden history name (PATH@SPEC, /.snapshots): a real name always wins."""
        _check_name(name)
        if is_synthetic(parent):
            await self._settle_lookup(parent, name)
            node = self.views.lookup(parent, name)
        else:
            ino = self.catalog.lookup(parent, name)
            if ino is not None:
                return self.getattr(ino)
            await self._settle_lookup(parent, name)
            node = self.views.lookup_hidden(parent, name)
        if node is None:
            raise NotFound(f"{name!r} not found")
        return self.views.attr(self.views.ino(node))

    async def _settle_lookup(self, parent: InodeNo, name: bytes) -> None:
        """Before history resolves `name` in `parent`: commit the unsettled saves it may show.

        In a version listing (FILE@/N), those of that file's history. For PATH@SPEC in a live
        directory, those of the file PATH names, or every one when PATH is a directory (DIR@TIME shows
        a subtree). Nothing when PATH names nothing now, nor inside snapshot and time views (their
        commit is fixed): real names with '@' are common (node_modules/.pnpm/pkg@1.2.3), and settling
        for each of them would commit every pending save early.
        """
        if is_synthetic(parent):
            node = self.views.node(parent)
            if isinstance(node, VersionList):
                await self._settle_history(node.ino)
            return
        base, at, _ = name.rpartition(b"@")
        ino = self.catalog.lookup(parent, base) if at and base else None
        if ino is not None:
            mode = self.catalog.attr(ino).mode
            if stat.S_ISDIR(mode):
                await self._settle_history(None)
            elif stat.S_ISREG(mode):
                await self._settle_history(ino)

    async def _settle_history(self, ino: InodeNo | None) -> None:
        """Commit the unsettled saves of `ino`'s history (None: all), if any: those queued, and wait
        for those being committed. The saves queued before them commit first (queue order)."""
        unsettled = [live.ino for live in self._live.values()
                     if live.ino in self._pending or live.committing is not None]
        if ino is not None and unsettled:
            lineage = self.catalog.lineage(ino)
            unsettled = [i for i in unsettled if self.catalog.lineage(i) == lineage]
        if unsettled:
            # Taking the commit lock also waits for a batch in flight, which may hold some of them.
            await self.commit_pending(until=[i for i in unsettled if i in self._pending])

    @staticmethod
    def _writable(*inos: InodeNo) -> None:
        if any(is_synthetic(ino) for ino in inos):
            raise ReadOnly("history is read-only")

    async def setattr(
        self, ino: InodeNo, *, mode: int | None = None, uid: int | None = None, gid: int | None = None,
        size: int | None = None, atime_ns: int | None = None, mtime_ns: int | None = None,
    ) -> Attr:
        self._writable(ino)
        if size is not None:
            attr = self.catalog.attr(ino)
            if attr.is_dir:
                raise IsADirectory("cannot truncate a directory")
            if not stat.S_ISREG(attr.mode):
                raise InvalidArgument("can only truncate regular files")
            live = self._get_live(ino)
            # Without `busy`, a commit finishing while we wait would forget `live` and this truncate
            # would land in a staging file nobody reads or commits.
            live.busy += 1
            try:
                await self._settle(live)
                st = await self._staging(live, empty=size == 0)
                _os_call(os.ftruncate, st.fd, size)
                st.size = size
                self._mark_dirty(live, mtime_ns if mtime_ns is not None else _now())
                if live.writers == 0:
                    self._queue(ino)
            finally:
                live.busy -= 1
                self._maybe_forget_staging(live)
            mtime_ns = None
        live_ = self._live.get(ino)
        if mtime_ns is not None and live_ is not None:
            # A commit in flight records the mtime it started with: let it land first, or it would
            # overwrite this one (rsync and cp -p set times right after close).
            while live_.committing is not None:
                await live_.committing.wait()
            live_ = self._live.get(ino)
        if mtime_ns is not None and live_ is not None and live_.staging is not None and live_.staging.dirty:
            # The pending version records it; the catalog's state row comes with that commit.
            live_.staging.mtime_ns = mtime_ns
            mtime_ns = None
        if any(v is not None for v in (mode, uid, gid, atime_ns, mtime_ns)):
            self.catalog.set_attr(ino, mode=mode, uid=uid, gid=gid, atime_ns=atime_ns, mtime_ns=mtime_ns)
            if mtime_ns is not None and live_ is not None and live_.staging is not None:
                live_.staging.mtime_ns = mtime_ns
        return self.getattr(ino)

    # -- directories -------------------------------------------------------------------------------
    async def readdir(self, ino: InodeNo, after: int, limit: int = 256) -> list[tuple[int, bytes, Attr]]:
        if is_synthetic(ino):
            node = self.views.node(ino)
            if isinstance(node, VersionList) and after == 0:
                await self._settle_history(node.ino)  # FILE@ lists saves closed a moment ago too
            return self.views.readdir(ino, after, limit)
        return [(e.cookie, e.name, self.getattr(e.ino)) for e in self.catalog.readdir(ino, after, limit)]

    async def mkdir(self, parent: InodeNo, name: bytes, mode: int, uid: int, gid: int) -> Attr:
        if is_synthetic(parent) and isinstance(self.views.node(parent), SnapshotList):
            try:
                snap = await self.snapshot(name.decode(errors="surrogateescape"))
            except UsageError as e:
                raise NotPermitted(str(e)) from None
            return self.views.attr(self.views.ino(View(ROOT_INO, snap.commit_no)))
        self._writable(parent)
        self._not_history(parent, name)
        return self.catalog.create(parent, name, stat.S_IFDIR | stat.S_IMODE(mode), uid, gid)

    async def snapshot(self, name: str | None = None) -> Snapshot:
        """Take a snapshot of the whole tree, including what open files hold now.

        Raises:
            UsageError: `name` could be read as a version or a time, or has '/' or '@'.
            Exists: a snapshot of that name exists.
        """
        await self.flush_kernel()
        await self.flush_all()
        return snapshots.take(self.catalog, name)

    def is_being_written(self, ino: InodeNo) -> bool:
        """Whether reads of `ino` come from a staging file (content not, or not only, in the store)."""
        live = self._live.get(ino)
        return live is not None and live.staging is not None

    def open_inodes(self) -> list[InodeNo]:
        """Inodes with handles or staging files now."""
        return list(self._live)

    def paths_open_for_writing(self) -> list[bytes]:
        """A live path ('a/b', from the root) of each inode with a writable handle now."""
        paths = (self.catalog.path_of(ino) for ino, live in self._live.items() if live.writers)
        return [p for p in paths if p is not None]

    @asynccontextmanager
    async def commits_paused(self) -> AsyncIterator[None]:
        """No version is committed while inside (maintenance that must not race the committer)."""
        async with self._commit_lock:
            yield

    def mknod(self, parent: InodeNo, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Attr:
        self._writable(parent)
        self._not_history(parent, name)
        return self.catalog.create(parent, name, mode, uid, gid, rdev=rdev)

    def symlink(self, parent: InodeNo, name: bytes, target: bytes, uid: int, gid: int) -> Attr:
        self._writable(parent)
        self._not_history(parent, name)
        return self.catalog.create(parent, name, stat.S_IFLNK | 0o777, uid, gid, target=target)

    def readlink(self, ino: InodeNo) -> bytes:
        if is_synthetic(ino):
            return self.views.readlink(ino)
        return self.catalog.readlink(ino)

    def link(self, ino: InodeNo, parent: InodeNo, name: bytes) -> Attr:
        self._writable(ino, parent)
        self._not_history(parent, name)
        self.catalog.link(ino, parent, name)
        return self.getattr(ino)

    def unlink(self, parent: InodeNo, name: bytes) -> None:
        self._writable(parent)
        with self._hidden_names_read_only(parent, name):
            try:
                ino = self.catalog.unlink(parent, name)
            except NoSpace:
                # On a full disk the catalog cannot even record the delete: free the uncommitted
                # content of the file being deleted (what the user asked to lose), then retry.
                if not self._drop_doomed_staging(parent, name):
                    raise
                ino = self.catalog.unlink(parent, name)
        live = self._live.get(ino)
        if live is not None and self.catalog.attr(ino).nlink == 0:
            live.deleted = True  # deleted, not replaced: its unsaved content goes with it
        self._after_unlink(ino)

    def _drop_doomed_staging(self, parent: InodeNo, name: bytes) -> bool:
        ino = self.catalog.lookup(parent, name)
        live = self._live.get(ino) if ino is not None else None
        if (ino is None or live is None or live.staging is None or live.opens or live.committing is not None
                or self.catalog.attr(ino).nlink != 1):
            return False  # (a commit in flight is reading it: it would store a truncated version)
        _os_call(os.ftruncate, live.staging.fd, 0)
        return True

    @contextmanager
    def _hidden_names_read_only(self, parent: InodeNo, name: bytes) -> Iterator[None]:
        """A name the catalog lacks but history resolves (f@1, .snapshots) is read-only, not missing."""
        try:
            yield
        except NotFound:
            if self.views.lookup_hidden(parent, name) is not None:
                raise ReadOnly("history is read-only") from None
            raise

    def _not_history(self, parent: InodeNo, name: bytes) -> None:
        """Refuse a new name (create, mkdir, link, rename's target...) that history resolves now.

        Such a name is no free name but a read-only view (f@1, d@snap, f@, /.snapshots): a real entry
        there would hide it, since a real name always wins. A name that resolves to nothing is free,
        and once real it wins for good (f@9 made before f had a version 9).
        """
        if self.views.lookup_hidden(parent, name) is not None and self.catalog.lookup(parent, name) is None:
            raise ReadOnly("history is read-only")

    def rmdir(self, parent: InodeNo, name: bytes) -> None:
        if is_synthetic(parent) and isinstance(self.views.node(parent), SnapshotList):
            self.catalog.delete_snapshot(name.decode(errors="surrogateescape"))
            return
        self._writable(parent)
        with self._hidden_names_read_only(parent, name):
            self.catalog.unlink(parent, name, rmdir=True)

    def rename(
        self, old_parent: InodeNo, old_name: bytes, new_parent: InodeNo, new_name: bytes, *,
        noreplace: bool = False, exchange: bool = False,
    ) -> None:
        self._writable(old_parent, new_parent)
        self._not_history(new_parent, new_name)
        with self._hidden_names_read_only(old_parent, old_name):
            replaced = self.catalog.rename(old_parent, old_name, new_parent, new_name, noreplace=noreplace,
                                           exchange=exchange)
        if replaced is not None:
            self._after_unlink(replaced)

    def _after_unlink(self, ino: InodeNo) -> None:
        live = self._live.get(ino)
        if live is not None:
            self._maybe_forget_staging(live)

    # -- files -----------------------------------------------------------------------------------
    def _get_live(self, ino: InodeNo) -> Live:
        live = self._live.get(ino)
        if live is None:
            live = self._live[ino] = Live(ino)
        return live

    async def open(self, ino: InodeNo, flags: int) -> int:
        writable = (flags & os.O_ACCMODE) != os.O_RDONLY
        if is_synthetic(ino):
            if writable or flags & os.O_TRUNC:
                raise ReadOnly("history is read-only")
            fh = self._next_fh
            self._next_fh += 1
            self._handles[fh] = Handle(ino, False, self.views.content(ino), pinned=True)
            return fh
        attr = self.catalog.attr(ino)
        if attr.is_dir:
            raise IsADirectory("is a directory")
        live = self._get_live(ino)
        if writable:
            live.busy += 1  # keeps `live` while a settling commit runs
            try:
                await self._settle(live)
            finally:
                live.busy -= 1
        live.opens += 1
        if writable:
            live.writers += 1
        fh = self._next_fh
        self._next_fh += 1
        self._handles[fh] = Handle(ino, writable)
        if writable and flags & os.O_TRUNC and (attr.size > 0 or live.staging is not None):
            try:
                await self.setattr(ino, size=0)
            except BaseException:
                await self.release(fh)
                raise
        return fh

    async def create(self, parent: InodeNo, name: bytes, mode: int, flags: int, uid: int, gid: int) -> tuple[int, Attr]:
        self._writable(parent)
        self._not_history(parent, name)
        attr = self.catalog.create(parent, name, stat.S_IFREG | stat.S_IMODE(mode), uid, gid)
        fh = await self.open(attr.ino, flags & ~os.O_TRUNC)
        return fh, attr

    async def _settle(self, live: Live) -> None:
        """Commit a closed but not yet committed state before it changes again: every save is a version.

        Commits of closed files are gathered for a moment; a file reopened for writing within that
        moment would otherwise fold two saves into one version.
        """
        if live.writers == 0 and live.ino in self._pending:
            await self.commit_pending(until=[live.ino])

    async def _staging(self, live: Live, *, empty: bool = False) -> Staging:
        """The inode's staging file, made on first need (a copy of its content unless `empty`)."""
        while live.committing is not None:
            await live.committing.wait()
        if live.staging is not None:
            return live.staging
        async with live.materializing:
            if live.staging is not None:
                return live.staging
            attr = self.catalog.attr(live.ino)
            path = self.repo.staging / str(live.ino)
            version = None if empty else self.catalog.version_at(live.ino)
            # A copy is made under another name and renamed when complete: recovery after a kill
            # must never take a half-made copy for the file's new content.
            work = path if version is None else path.with_name(f"{live.ino}.copy")
            fd = _os_call(self._spares.create, work)
            try:
                if version is not None:
                    await trio.to_thread.run_sync(self._copy_version, version, fd, limiter=self._threads)
                    os.replace(work, path)
            except BaseException:
                os.close(fd)
                work.unlink(missing_ok=True)
                raise
            live.staging = Staging(fd, path, 0 if version is None else version.size, attr.mtime_ns)
            return live.staging

    def _copy_version(self, version: Version, fd: int) -> None:
        offset = 0
        for data in self.repo.iter_content(version):
            _os_call(os.pwrite, fd, data, offset)
            offset += len(data)
        _os_call(os.ftruncate, fd, version.size)

    def _mark_dirty(self, live: Live, mtime_ns: int) -> None:
        st = live.staging
        assert st is not None
        if not st.dirty:
            st.dirty = True
            st.dirty_since = time.monotonic()
        st.mtime_ns = mtime_ns
        st.changed_ns = now_ns()

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        h = self._handles[fh]
        live = self._live.get(h.ino)
        if live is not None and live.staging is not None:
            return _os_call(os.pread, live.staging.fd, size, offset)
        if not h.pinned:
            attr = self.catalog.attr(h.ino)
            if h.version is None or h.version.vno != attr.vno:
                h.version = self.catalog.version(h.ino, attr.vno) if attr.vno else None
        if h.version is None:
            return b""
        data = self.repo.read_ready(h.version, offset, size)  # decoded ahead already: no thread hop
        if data is not None:
            return data
        return await trio.to_thread.run_sync(self.repo.read, h.version, offset, size, limiter=self._read_threads)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self._handles[fh]
        live = self._get_live(h.ino)
        n = 0
        try:
            st = await self._staging(live)
            n = _os_call(os.pwrite, st.fd, data, offset)
            if n < len(data):
                raise NoSpace("no space left on the store's disk")  # the next pwrite would say so
        except Exception:
            self._write_failed(h.ino, live, offset + len(data), n)
            raise
        st.size = max(st.size, offset + n)
        self._mark_dirty(live, _now())
        return n

    def _write_failed(self, ino: InodeNo, live: Live, end: int, stored: int) -> None:
        """Make what the kernel shows of the file agree with its staging file after a write failed.

        With the writeback cache, write(2) put the application's bytes in the kernel's page cache
        and returned before they were sent here. When storing them fails (a full disk), the kernel
        reports the error at the next fsync or close, but it keeps the pages, and its own idea of the
        size: a file of which 20 MB reached the disk read back as the 200 MiB the application wrote.
        Keeping those pages until the data is stored, as after a failed commit, is no option here:
        these bytes are in no file, and a remount would not find them.

        So the pages are dropped, and reads come from the staging file: from descriptors open now
        by a background task (the kernel waits until this request is answered), and until that task
        has done it, by every open itself, so that a read after close(2) returned never depends on
        timing. The kernel keeps its size, so the staging file is extended to the end of the failed
        write (sparsely: that needs no space): the bytes lost read as zeros, now and after a remount
        alike, as an unwritten extent does after a failed write-back on a local disk. (An O_DIRECT
        write bypasses the page cache: its error reaches the application at once, and the kernel
        truncates the file back to the size it knows, undoing the extension.)
        """
        st = live.staging
        if st is not None:
            if end > st.size:
                _os_call(os.ftruncate, st.fd, end)
            if end > st.size or stored:
                st.size = max(st.size, end)
                self._mark_dirty(live, _now())
        self._stale_pages[ino] = self._stale_pages.get(ino, 0) + 1
        self._stale_wakeup.set()

    async def fsync(self, fh: int) -> None:
        """Make the handle's data survive a power loss (it already survives a killed daemon)."""
        h = self._handles[fh]
        live = self._live.get(h.ino)
        if live is not None and live.committing is not None:
            await live.committing.wait()  # its content may be in that commit
        if live is None or live.staging is None:
            # Committed already (the staging file is gone): make the catalog's commit durable.
            await trio.to_thread.run_sync(self.catalog.sync, limiter=self._threads)
            return
        st = live.staging
        await trio.to_thread.run_sync(self._fsync_staging, st, limiter=self._threads)

    def _fsync_staging(self, st: Staging) -> None:
        _os_call(os.fsync, st.fd)
        if not st.fsynced_dir:
            fsync_path(st.path.parent, directory=True)
            st.fsynced_dir = True
        st.fsynced = True
        self.catalog.sync()

    async def release(self, fh: int) -> None:
        h = self._handles.pop(fh)
        live = self._live.get(h.ino)
        if live is None:
            return
        live.opens -= 1
        if h.writable:
            live.writers -= 1
        st = live.staging
        if st is not None and st.dirty and live.writers == 0:
            self._queue(h.ino)
        self._maybe_forget_staging(live)

    def _maybe_forget_staging(self, live: Live) -> None:
        """Drop the staging file and in-memory state once nothing needs them."""
        if live.opens > 0 or live.busy > 0 or live.committing is not None:
            return
        st = live.staging
        if st is not None:
            if st.dirty and not live.deleted:
                # Saved content is history even if its name is gone (a temp file renamed over a
                # file, then itself replaced by the next save): the committer still needs it.
                self._queue(live.ino)
                return
            self._spares.discard(st.fd, st.path)
            live.staging = None
        del self._live[live.ino]
        self._pending.pop(live.ino, None)

    # -- extended attributes -----------------------------------------------------------------------
    async def getxattr(self, ino: InodeNo, name: bytes) -> bytes:
        """Stored attributes, plus user.vfs.hash (BLAKE3 of the content) and user.vfs.version."""
        _check_not_acl(name)
        if name in (b"user.vfs.hash", b"user.vfs.version"):
            if not is_synthetic(ino):
                await self._settle_history(ino)  # a save closed a moment ago is the content now
            version = self.views.content(ino) if is_synthetic(ino) else self.catalog.version_at(ino)
            if version is None:
                raise NoData("no committed content")
            return version.hash.hex().encode() if name == b"user.vfs.hash" else str(version.vno).encode()
        if is_synthetic(ino):
            real, at = self.views.xattr_source(ino)
            return self.catalog.getxattr(real, name, at)
        return self.catalog.getxattr(ino, name)

    def listxattr(self, ino: InodeNo) -> list[bytes]:
        if is_synthetic(ino):
            try:
                return self.catalog.listxattr(*self.views.xattr_source(ino))
            except NoData:
                return []
        return self.catalog.listxattr(ino)

    def setxattr(self, ino: InodeNo, name: bytes, value: bytes) -> None:
        self._writable(ino)
        _check_not_acl(name)
        if name.startswith(b"user.vfs."):
            raise NotPermitted("user.vfs.* attributes are computed, not stored")
        self.catalog.setxattr(ino, name, value)

    def removexattr(self, ino: InodeNo, name: bytes) -> None:
        self._writable(ino)
        _check_not_acl(name)
        self.catalog.removexattr(ino, name)

    # -- the volume ------------------------------------------------------------------------------
    def statfs(self) -> StatFs:
        sv = os.statvfs(self.repo.path)
        files = self.catalog.inode_count()
        return StatFs(sv.f_frsize, sv.f_blocks, sv.f_bfree, sv.f_bavail, files + sv.f_ffree, sv.f_ffree, NAME_MAX)


def _os_call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a local file operation; ENOSPC becomes NoSpace, any other OSError an FsError with its errno."""
    try:
        return fn(*args, **kwargs)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise NoSpace("no space left on the store's disk") from None
        err = FsError(f"{getattr(fn, '__name__', fn)} failed: {e.strerror}")
        err.errno = e.errno or errno.EIO
        raise err from None
