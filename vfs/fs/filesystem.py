"""FileSystem: what the mounted tree means, independent of FUSE.

`FileSystem` is the facade the FUSE adapter and the control server call, one method per request; the
work is done by its parts, each in a module of its own:

- `vfs.fs.handles`: the open-file table. A *handle* is one open() of an inode.
- `vfs.fs.staging`: staging files. A file with uncommitted or in-progress content has a *staging file*
  holding its whole current content; writes go to it and reads of that inode come from it. Without a
  staging file, reads come from the inode's committed version in the store.
- `vfs.fs.committer`: closed staging files become versions, many per transaction; history lookups
  first commit the saves they show (*settle*).
- `vfs.fs.recovery`: staging files a killed daemon left behind become versions at the next start.
- `vfs.fs.xattrs`: extended attributes, stored, computed (user.vfs.*) and refused (ACLs).
- `vfs.fs.views`: history (FILE@N, DIR@TIME, /.snapshots) as read-only synthetic inodes.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import trio

from vfs.catalog import NAME_MAX, Version
from vfs.catalog.wal import checkpoint_wal
from vfs.errors import (
    InvalidArgument,
    IsADirectory,
    NameTooLong,
    NoSpace,
    NotFound,
    NotPermitted,
    ReadOnly,
    UsageError,
    VfsError,
)
from vfs.fs import recovery, snapshots
from vfs.fs.committer import Committer
from vfs.fs.handles import Handle, OpenFiles
from vfs.fs.staging import StagingFiles, mark_dirty, os_call
from vfs.fs.types import Attr, Snapshot, StatFs
from vfs.fs.views import SnapshotList, VersionList, View, Views, is_synthetic
from vfs.fs.xattrs import Xattrs
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo

log = logging.getLogger(__name__)
_PINNED_VERSIONS = 65536  # a follower's cache of pinned versions (a few hundred bytes each)


def _nothing_cached(ino: InodeNo) -> None:
    """`invalidate` without a kernel: nothing is cached."""


async def _no_kernel_cache(paths: list[bytes]) -> None:
    """`flush_kernel` without a kernel: nothing to write back."""
    await trio.lowlevel.checkpoint()


def _pwrite_all(fd: int, data: bytes, offset: int) -> int:
    n = os_call(os.pwrite, fd, data, offset)
    if n < len(data):
        raise NoSpace("no space left on the store's disk")  # the next pwrite would say so
    return n


def _check_name(name: bytes) -> None:
    if len(name) > NAME_MAX:
        raise NameTooLong(f"name of {len(name)} bytes is longer than {NAME_MAX}")


class FileSystem:
    """The filesystem's meaning: one method per request of the kernel or the control server.

    Args:
        repo: the open store.
        version_interval: seconds after which a file kept open and dirty is committed anyway.
        invalidate: drops what the kernel caches of an inode; called when its content changes by a
            path other than the kernel's own writes (a restore, a write that failed).
        flush_kernel: makes the kernel write back the dirty pages it caches (writeback cache) of the
            files at these paths (from the root, as `paths_open_for_writing` gives them), and waits
            until they arrived.
    """

    def __init__(
        self, repo: Repository, *, version_interval: float = 300.0,
        invalidate: Callable[[InodeNo], None] = _nothing_cached,
        flush_kernel: Callable[[list[bytes]], Awaitable[None]] = _no_kernel_cache, read_only: str | None = None,
    ) -> None:
        """`read_only`: why nothing may be written (a follower's mount), for the messages; None: writable."""
        self.repo = repo
        self.read_only = read_only
        # Read-only: inodes a refresh changed while handles of their old version were open; the kernel
        # forgets them when the last of those is released (see `changed_by_refresh`).
        self._forget_at_release: set[InodeNo] = set()
        # Read-only: the versions opens pinned, by (inode, number), until the next refresh: an open then
        # costs no query (a follower's reads of cached data are opens and releases).
        self._pinned: OrderedDict[tuple[InodeNo, int], Version] = OrderedDict()
        # Read-only: the version whose pages the kernel may cache, by inode (see `page_cache_use`).
        self._cached_versions: dict[InodeNo, bytes] = {}
        # Read-only: unset while a refresh is installed (see `refreshing`); opens wait for it.
        self._installed = trio.Event()
        self._installed.set()
        self.catalog = repo.catalog
        self._threads = trio.CapacityLimiter(2)
        # Reads of committed content wait on the disk more than on the CPU (hashing releases the
        # GIL): more of them in flight overlap the kernel's read-ahead requests.
        self._read_threads = trio.CapacityLimiter(4)
        self.views = Views(self.catalog)
        # Called when an inode's content changes by a path other than the kernel's own writes.
        self.invalidate = invalidate
        self._write_back = flush_kernel
        self._files = OpenFiles()
        self._staging = StagingFiles(repo, self._threads, invalidate)
        self._committer = Committer(repo, self._files, self._staging, self._threads, self.views,
                                    version_interval=version_interval, flush_kernel=self.flush_kernel)
        self._xattrs = Xattrs(self.catalog, self.views, self._committer.settle_history)

    # -- lifecycle -------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work: the committer, the version-interval timer, WAL checkpoints, dropping the
        kernel's pages of failed writes, emptying spares, beginning disk writes of staging files. Cancel
        to stop."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._committer.run)
            nursery.start_soon(self._committer.interval_timer)
            nursery.start_soon(self._committer.commit_edits)
            nursery.start_soon(checkpoint_wal, self.catalog)
            nursery.start_soon(self._staging.invalidate_stale_pages)
            nursery.start_soon(self._staging.empty_spares)
            nursery.start_soon(self._staging.begin_write_backs)
            task_status.started()

    async def flush_kernel(self) -> None:
        """Make the kernel write back the dirty pages it caches of files open for writing, to us."""
        await self._write_back(self.paths_open_for_writing())

    def _version_to_pin(self, ino: InodeNo, vno: int) -> Version | None:
        if not vno:
            return None
        version = self._pinned.get((ino, vno))
        if version is None:
            version = self.catalog.version(ino, vno)
            if version is None:
                raise NotFound(f"version {vno} of inode {ino} is gone")
            self._pinned[(ino, vno)] = version
            if len(self._pinned) > _PINNED_VERSIONS:
                self._pinned.popitem(last=False)
        else:
            self._pinned.move_to_end((ino, vno))
        return version

    def changed_by_refresh(self, inos: set[InodeNo]) -> list[InodeNo]:
        """A follower's refresh changed `inos`: those whose cached pages and attributes the kernel must drop
        now. An inode with handles open keeps them until the last one closes: the kernel keeps one size
        and one page cache per inode, which those handles read their old version through, while new
        opens read the new one past the cache (`page_cache_use`)."""
        self._pinned.clear()  # a rename over a file renumbers versions: (inode, number) may name others now
        open_now = {h.ino for h in self._files.handles.values()}
        self._forget_at_release |= inos & open_now
        return [ino for ino in inos if ino not in open_now]

    @contextmanager
    def refreshing(self) -> Iterator[None]:
        """Within: a follower's refresh is installed and the kernel made to forget what it changed. Opens
        wait until it is done: one in between would read the new version while the kernel still has the
        old size, and the kernel reads no further than that size (a longer file read cut short)."""
        self._installed = trio.Event()
        try:
            yield
        finally:
            self._installed.set()

    def page_cache_use(self, fh: int) -> tuple[bool, bool]:
        """(keep_cache, direct_io) for the kernel's open of handle `fh`.

        A follower's refresh may change a file while handles of its old version are open, and the kernel
        caches pages by inode, not by handle: a handle of another version than the open ones reads past
        the page cache (direct I/O), and an open keeps the cached pages only if they are of its version.
        """
        h = self._files.handles[fh]
        if self.read_only is None or is_synthetic(h.ino):
            return self.kernel_cache_valid(h.ino), False
        vid = h.version.hash if h.version is not None else b""  # by content: equal bytes may share pages
        others = {o.version.hash if o.version is not None else b""
                  for n, o in self._files.handles.items() if o.ino == h.ino and n != fh}
        if others - {vid}:
            return False, True
        # Pages of another version may be cached (a refresh made the kernel drop them, but a handle of the
        # old version may have read them in again since): keep them only if they are of this one.
        keep = self._cached_versions.get(h.ino) == vid
        self._cached_versions[h.ino] = vid
        return keep, False

    def kernel_cache_valid(self, ino: InodeNo) -> bool:
        """Whether the kernel may keep the pages it caches of `ino` when it is opened again: not while
        pages of a failed write may be among them (the open then drops them, before it returns)."""
        return self._staging.kernel_cache_valid(ino)

    async def flush_all(self) -> bool:
        """Commit every dirty staging file, open or not; False if some could not be committed."""
        return await self._committer.flush_all()

    async def commit_open_files(self) -> None:
        """Commit what open files hold, the kernel's dirty pages of them first (a flush request, a
        maintenance run).

        Raises:
            VfsError: some could not be committed (the daemon's log says why).
        """
        await self.flush_kernel()  # dirty pages in the kernel's writeback cache first
        if not await self.flush_all():
            raise VfsError("some open files could not be committed; see the daemon's log")

    async def close(self) -> None:
        """Commit everything and release staging files (unmount); the repository stays open.

        What cannot be committed now (a full disk) stays in staging/ and is recovered at next start.
        """
        await self._committer.close()
        self._staging.close()

    async def recover(self) -> int:
        """Commit staging files left by a killed daemon; returns how many became versions.

        See `vfs.fs.recovery.recover`: one that cannot be committed for lack of space stays the file's
        uncommitted content.
        """
        return await recovery.recover(self.repo, self._files, self._committer, self._threads)

    # -- attributes --------------------------------------------------------------------------------
    def getattr(self, ino: InodeNo) -> Attr:
        if is_synthetic(ino):
            return self.views.attr(ino)
        attr = self.catalog.attr(ino)
        live = self._files.live.get(ino)
        if live is not None and live.staging is not None:
            st = live.staging
            attr = Attr(attr.ino, attr.mode, attr.uid, attr.gid, attr.rdev, st.size, attr.atime_ns,
                        st.mtime_ns, attr.ctime_ns, attr.vno, attr.nlink)
        return attr

    async def lookup(self, parent: InodeNo, name: bytes) -> Attr:
        """A real name, else a hidden history name (PATH@SPEC, /.snapshots): a real name always wins."""
        _check_name(name)
        if is_synthetic(parent):
            await self._committer.settle_lookup(parent, name)
            node = self.views.lookup(parent, name)
        else:
            ino = self.catalog.lookup(parent, name)
            if ino is not None:
                return self.getattr(ino)
            await self._committer.settle_lookup(parent, name)
            node = self.views.lookup_hidden(parent, name)
        if node is None:
            raise NotFound(f"{name!r} not found")
        return self.views.attr(self.views.ino(node))

    def _writable(self, *inos: InodeNo) -> None:
        if self.read_only is not None:
            raise ReadOnly(self.read_only)
        if any(is_synthetic(ino) for ino in inos):
            raise ReadOnly("history is read-only")

    async def setattr(
        self, ino: InodeNo, *, mode: int | None = None, uid: int | None = None, gid: int | None = None,
        size: int | None = None, atime_ns: int | None = None, mtime_ns: int | None = None,
    ) -> Attr:
        self._writable(ino)
        if ino not in self._files.live and self.catalog.attr(ino).nlink == 0:
            # Deleted and open nowhere: nobody can see its attributes again. The kernel writes back the
            # times it cached of every file it forgets (writeback cache), deleted ones too: a
            # transaction per `rm` for nothing, which also ended each batch of deletes.
            return self.getattr(ino)
        if size is not None:
            attr = self.catalog.attr(ino)
            if attr.is_dir:
                raise IsADirectory("cannot truncate a directory")
            if not stat.S_ISREG(attr.mode):
                raise InvalidArgument("can only truncate regular files")
            live = self._files.get_live(ino)
            # Without `busy`, a commit finishing while we wait would forget `live` and this truncate
            # would land in a staging file nobody reads or commits.
            live.busy += 1
            try:
                await self._committer.settle(live)
                st = await self._staging.get(live, empty=size == 0)
                os_call(os.ftruncate, st.fd, size)
                st.size = size
                mark_dirty(live, mtime_ns if mtime_ns is not None else time.time_ns())
                if live.writers == 0:
                    self._committer.queue(ino)
            finally:
                live.busy -= 1
                self._committer.maybe_forget(live)
            mtime_ns = None
        live_ = self._files.live.get(ino)
        if mtime_ns is not None and live_ is not None:
            # A commit in flight records the mtime it started with: let it land first, or it would
            # overwrite this one (rsync and cp -p set times right after close).
            while live_.committing is not None:
                await live_.committing.wait()
            live_ = self._files.live.get(ino)
        if mtime_ns is not None and live_ is not None and live_.staging is not None and live_.staging.dirty:
            # The pending version records it; the catalog's state row comes with that commit.
            live_.staging.mtime_ns = mtime_ns
            mtime_ns = None
        if any(v is not None for v in (mode, uid, gid, atime_ns, mtime_ns)):
            self.catalog.set_attr(ino, mode=mode, uid=uid, gid=gid, atime_ns=atime_ns, mtime_ns=mtime_ns, batched=True)
            if mtime_ns is not None and live_ is not None and live_.staging is not None:
                live_.staging.mtime_ns = mtime_ns
        return self.getattr(ino)

    # -- directories -------------------------------------------------------------------------------
    async def readdir(self, ino: InodeNo, after: int, limit: int = 256) -> list[tuple[int, bytes, Attr]]:
        if is_synthetic(ino):
            node = self.views.node(ino)
            if isinstance(node, VersionList) and after == 0:
                await self._committer.settle_history(node.ino)  # FILE@ lists saves closed a moment ago too
            return self.views.readdir(ino, after, limit)
        # Live attributes are cached (the kernel asks for them all the time): one lookup each is
        # cheaper than a listing's join when they are, as after a create or a stat.
        return [(e.cookie, e.name, self.getattr(e.ino)) for e in self.catalog.readdir(ino, after, limit)]

    async def mkdir(self, parent: InodeNo, name: bytes, mode: int, uid: int, gid: int) -> Attr:
        if is_synthetic(parent) and isinstance(self.views.node(parent), SnapshotList):
            try:
                snap = await self.snapshot(name.decode(errors="surrogateescape"))
            except UsageError as e:
                raise NotPermitted(str(e)) from None
            return self.views.attr(self.views.ino(View(ROOT_INO, snap.commit_no)))
        self._writable(parent)
        self.views.refuse_hidden_name(parent, name)
        return self.catalog.create(parent, name, stat.S_IFDIR | stat.S_IMODE(mode), uid, gid, batched=True)

    async def snapshot(self, name: str | None = None) -> Snapshot:
        """Take a snapshot of the whole tree, including what open files hold now.

        Raises:
            UsageError: `name` could be read as a version or a time, or has '/' or '@'.
            Exists: a snapshot of that name exists.
            ReadOnly: a follower's mount.
        """
        self._writable()
        await self.flush_kernel()
        await self.flush_all()
        return snapshots.take(self.catalog, name)

    def is_being_written(self, ino: InodeNo) -> bool:
        """Whether reads of `ino` come from a staging file (content not, or not only, in the store)."""
        live = self._files.live.get(ino)
        return live is not None and live.staging is not None

    def open_inodes(self) -> list[InodeNo]:
        """Inodes with handles or staging files now."""
        return list(self._files.live)

    def paths_open_for_writing(self) -> list[bytes]:
        """A live path ('a/b', from the root) of each inode with a writable handle now."""
        paths = (self.catalog.path_of(ino) for ino, live in self._files.live.items() if live.writers)
        return [p for p in paths if p is not None]

    @asynccontextmanager
    async def commits_paused(self) -> AsyncIterator[None]:
        """No version is committed while inside (maintenance that must not race the committer)."""
        async with self._committer.paused():
            yield

    def mknod(self, parent: InodeNo, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Attr:
        self._writable(parent)
        self.views.refuse_hidden_name(parent, name)
        return self.catalog.create(parent, name, mode, uid, gid, rdev=rdev, batched=True)

    def symlink(self, parent: InodeNo, name: bytes, target: bytes, uid: int, gid: int) -> Attr:
        self._writable(parent)
        self.views.refuse_hidden_name(parent, name)
        return self.catalog.create(parent, name, stat.S_IFLNK | 0o777, uid, gid, target=target, batched=True)

    def readlink(self, ino: InodeNo) -> bytes:
        if is_synthetic(ino):
            return self.views.readlink(ino)
        return self.catalog.readlink(ino)

    def link(self, ino: InodeNo, parent: InodeNo, name: bytes) -> Attr:
        self._writable(ino, parent)
        self.views.refuse_hidden_name(parent, name)
        self.catalog.link(ino, parent, name, batched=True)
        return self.getattr(ino)

    def unlink(self, parent: InodeNo, name: bytes) -> None:
        self._writable(parent)
        with self.views.hidden_names_read_only(parent, name):
            try:
                ino = self.catalog.unlink(parent, name, batched=True)
            except NoSpace:
                # On a full disk the catalog cannot even record the delete: free the uncommitted
                # content of the file being deleted (what the user asked to lose), then retry,
                # unbatched (the batch's journal may be what found no room).
                self._drop_doomed_staging(parent, name)
                ino = self.catalog.unlink(parent, name)
        live = self._files.live.get(ino)
        if live is not None and self.catalog.attr(ino).nlink == 0:
            live.deleted = True  # deleted, not replaced: its unsaved content goes with it
        self._after_unlink(ino)

    def _drop_doomed_staging(self, parent: InodeNo, name: bytes) -> bool:
        ino = self.catalog.lookup(parent, name)
        live = self._files.live.get(ino) if ino is not None else None
        if (ino is None or live is None or live.staging is None or live.opens or live.committing is not None
                or self.catalog.attr(ino).nlink != 1):
            return False  # (a commit in flight is reading it: it would store a truncated version)
        os_call(os.ftruncate, live.staging.fd, 0)
        return True

    def rmdir(self, parent: InodeNo, name: bytes) -> None:
        if is_synthetic(parent) and isinstance(self.views.node(parent), SnapshotList):
            self._writable()
            self.catalog.delete_snapshot(name.decode(errors="surrogateescape"))
            return
        self._writable(parent)
        with self.views.hidden_names_read_only(parent, name):
            try:
                self.catalog.unlink(parent, name, rmdir=True, batched=True)
            except NoSpace:  # the batch's journal may be what found no room
                self.catalog.unlink(parent, name, rmdir=True)

    async def fsyncdir(self) -> None:
        """Make every change of the tree so far survive a power loss (it already survives a killed daemon)."""
        await trio.to_thread.run_sync(self.catalog.sync, limiter=self._threads)

    def rename(
        self, old_parent: InodeNo, old_name: bytes, new_parent: InodeNo, new_name: bytes, *,
        noreplace: bool = False, exchange: bool = False,
    ) -> None:
        self._writable(old_parent, new_parent)
        self.views.refuse_hidden_name(new_parent, new_name)
        with self.views.hidden_names_read_only(old_parent, old_name):
            replaced = self.catalog.rename(old_parent, old_name, new_parent, new_name, noreplace=noreplace,
                                           exchange=exchange, batched=True)
        if replaced is not None:
            self._after_unlink(replaced)

    def _after_unlink(self, ino: InodeNo) -> None:
        live = self._files.live.get(ino)
        if live is not None:
            self._committer.maybe_forget(live)

    # -- files -----------------------------------------------------------------------------------
    async def open(self, ino: InodeNo, flags: int) -> int:
        writable = (flags & os.O_ACCMODE) != os.O_RDONLY
        if is_synthetic(ino):
            if writable or flags & os.O_TRUNC:
                raise ReadOnly("history is read-only")
            return self._files.add(Handle(ino, False, self.views.content(ino), pinned=True))
        if not self._installed.is_set():
            await self._installed.wait()
        attr = self.catalog.attr(ino)
        if attr.is_dir:
            raise IsADirectory("is a directory")
        if self.read_only is not None:
            if writable or flags & os.O_TRUNC:
                raise ReadOnly(self.read_only)
            # Pinned: a refresh that lands while it is open does not change what it reads.
            return self._files.add(Handle(ino, False, self._version_to_pin(ino, attr.vno), pinned=True))
        live = self._files.get_live(ino)
        if writable:
            live.busy += 1  # keeps `live` while a settling commit runs
            try:
                await self._committer.settle(live)
            finally:
                live.busy -= 1
        live.opens += 1
        if writable:
            live.writers += 1
        fh = self._files.add(Handle(ino, writable))
        if writable and flags & os.O_TRUNC and (attr.size > 0 or live.staging is not None):
            try:
                await self.setattr(ino, size=0)
            except BaseException:
                await self.release(fh)
                raise
        return fh

    async def create(self, parent: InodeNo, name: bytes, mode: int, flags: int, uid: int, gid: int) -> tuple[int, Attr]:
        self._writable(parent)
        self.views.refuse_hidden_name(parent, name)
        attr = self.catalog.create(parent, name, stat.S_IFREG | stat.S_IMODE(mode), uid, gid, batched=True)
        fh = await self.open(attr.ino, flags & ~os.O_TRUNC)
        return fh, attr

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        h = self._files.handles[fh]
        live = self._files.live.get(h.ino)
        if live is not None and live.staging is not None:
            return os_call(os.pread, live.staging.fd, size, offset)
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
        h = self._files.handles[fh]
        live = self._files.get_live(h.ino)
        n = 0
        try:
            st = await self._staging.get(live)
            try:
                n = _pwrite_all(st.fd, data, offset)
            except NoSpace:
                await self._staging.reclaim()  # space a delete just freed may still be on its way back
                n = _pwrite_all(st.fd, data, offset)
        except Exception:
            self._staging.write_failed(h.ino, live, offset + len(data), n)
            raise
        st.size = max(st.size, offset + n)
        mark_dirty(live, time.time_ns())
        self._staging.wrote(st, n)
        return n

    async def fsync(self, fh: int) -> None:
        """Make the handle's data survive a power loss (it already survives a killed daemon)."""
        h = self._files.handles[fh]
        live = self._files.live.get(h.ino)
        if live is not None and live.committing is not None:
            await live.committing.wait()  # its content may be in that commit
        if live is None or live.staging is None:
            # Committed already (the staging file is gone): make the catalog's commit durable.
            await trio.to_thread.run_sync(self.catalog.sync, limiter=self._threads)
            return
        st = live.staging
        await trio.to_thread.run_sync(self._staging.fsync, st, limiter=self._threads)

    async def release(self, fh: int) -> None:
        h = self._files.handles.pop(fh)
        live = self._files.live.get(h.ino)
        if live is not None:
            live.opens -= 1
            if h.writable:
                live.writers -= 1
            st = live.staging
            if st is not None and st.dirty and live.writers == 0:
                self._committer.queue(h.ino)
            self._committer.maybe_forget(live)
        # A follower's inode a refresh changed while open: the kernel forgets it with its last handle.
        if h.ino in self._forget_at_release and all(o.ino != h.ino for o in self._files.handles.values()):
            self._forget_at_release.discard(h.ino)
            await trio.to_thread.run_sync(self.invalidate, h.ino, abandon_on_cancel=True)

    # -- extended attributes -----------------------------------------------------------------------
    async def getxattr(self, ino: InodeNo, name: bytes) -> bytes:
        """Stored attributes, plus user.vfs.hash (BLAKE3 of the content) and user.vfs.version."""
        return await self._xattrs.getxattr(ino, name)

    def listxattr(self, ino: InodeNo) -> list[bytes]:
        return self._xattrs.listxattr(ino)

    def setxattr(self, ino: InodeNo, name: bytes, value: bytes) -> None:
        self._writable(ino)
        self._xattrs.setxattr(ino, name, value)

    def removexattr(self, ino: InodeNo, name: bytes) -> None:
        self._writable(ino)
        self._xattrs.removexattr(ino, name)

    # -- the volume ------------------------------------------------------------------------------
    def statfs(self) -> StatFs:
        sv = os.statvfs(self.repo.path)
        files = self.catalog.inode_count()
        return StatFs(sv.f_frsize, sv.f_blocks, sv.f_bfree, sv.f_bavail, files + sv.f_ffree, sv.f_ffree, NAME_MAX)

