"""Staging files: the local files holding the content of files being written.

A file with uncommitted or in-progress content has a *staging file* `staging/<ino>` on local disk
holding its whole current content; writes are plain pwrites into it and reads of that inode come from
it. It is made on first need, as a copy of the inode's committed version unless the write empties it.

Durability. Staging files are the journal of uncommitted content: after `kill -9` of the daemon they
are still there (the page cache survives a process), and `recover()` at the next start commits every
one that differs from its inode's latest version. fsync(2) fsyncs the staging file and the catalog's
WAL, which makes the data survive a power loss as well.

A write that fails (a full disk) leaves the kernel caching pages that are in no staging file: this
module also has them dropped (`write_failed`, `invalidate_stale_pages`).
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import trio

from vfs.catalog import Version, now_ns
from vfs.errors import FsError, NoSpace
from vfs.fs.handles import Live, Staging
from vfs.fs.spares import Spares
from vfs.fsutil import fsync_path, start_write_back
from vfs.repository import Repository
from vfs.types import InodeNo

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
# Bytes written to a staging file after which the disk is asked to begin writing them (`wrote`).
WRITE_BACK_STEP = 8 << 20


class StagingFiles:
    """Makes, copies, fsyncs and discards staging files; keeps the kernel's pages true after a failed write.

    Args:
        repo: the store whose `staging/` directory holds the files.
        threads: the limiter of the filesystem's blocking work (copies run under it).
        invalidate: drops what the kernel caches of an inode.
    """

    def __init__(self, repo: Repository, threads: trio.CapacityLimiter, invalidate: Callable[[InodeNo], None]) -> None:
        self.repo = repo
        self.catalog = repo.catalog
        self._threads = threads
        self._spares = Spares(repo.staging)
        self._invalidate = invalidate
        # Inodes whose pages the kernel may cache although writing them here failed (see
        # write_failed): inode -> failures, until an invalidation begun after the last one has ended.
        self._stale_pages: dict[InodeNo, int] = {}
        self._stale_wakeup = trio.Event()
        self._spares_wakeup = trio.Event()
        self._emptying = trio.CapacityLimiter(1)  # one thread empties spares at a time
        # Staging files to begin writing to disk (`wrote`): path -> a descriptor of their own.
        self._write_backs: dict[Path, int] = {}
        self._write_backs_wakeup = trio.Event()

    async def get(self, live: Live, *, empty: bool = False) -> Staging:
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
            # vno 0: an empty file (a new one, mostly): no version to look up.
            version = None if empty or attr.vno == 0 else self.catalog.version_at(live.ino)
            # A copy is made under another name and renamed when complete: recovery after a kill
            # must never take a half-made copy for the file's new content.
            work = path if version is None else path.with_name(f"{live.ino}.copy")
            fd = os_call(self._spares.create, work)
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
            os_call(os.pwrite, fd, data, offset)
            offset += len(data)
        os_call(os.ftruncate, fd, version.size)

    def discard(self, st: Staging) -> None:
        """Close and remove a staging file nothing needs any more (kept as a spare for the next one)."""
        if self._spares.discard(st.fd, st.path):
            self._spares_wakeup.set()

    async def empty_spares(self) -> None:
        """Background task: empty discarded staging files in a thread, off the loop. Cancel to stop."""
        while True:
            await self._spares_wakeup.wait()
            self._spares_wakeup = trio.Event()
            await trio.to_thread.run_sync(self._spares.empty, limiter=self._emptying)

    async def reclaim(self) -> None:
        """Wait until the staging files discarded so far are emptied: a write that found the disk full
        right after a delete gave space back (the delete's emptying runs in the background) retries then."""
        await trio.to_thread.run_sync(self._spares.empty, limiter=self._emptying)

    def close(self) -> None:
        """Release the spares' descriptors and those of write-backs not begun (at unmount, once nothing
        runs any more)."""
        self._spares.close()
        for fd in self._write_backs.values():
            os.close(fd)
        self._write_backs = {}

    def write_failed(self, ino: InodeNo, live: Live, end: int, stored: int) -> None:
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
                os_call(os.ftruncate, st.fd, end)
            if end > st.size or stored:
                st.size = max(st.size, end)
                mark_dirty(live, time.time_ns())
        self._stale_pages[ino] = self._stale_pages.get(ino, 0) + 1
        self._stale_wakeup.set()

    async def invalidate_stale_pages(self) -> None:
        """Background task: have the kernel drop the pages of files whose writes failed. Cancel to stop."""
        limiter = trio.CapacityLimiter(1)
        while True:
            await self._stale_wakeup.wait()
            self._stale_wakeup = trio.Event()  # a write failing from here on comes round again
            for ino, failures in list(self._stale_pages.items()):
                # In a thread: the kernel first waits for the failed write-back to end, which needs
                # this loop to answer. Abandoned on cancel, as flush_kernel is: it may wait for a loop
                # that has stopped answering.
                await trio.to_thread.run_sync(self._invalidate, ino, limiter=limiter, abandon_on_cancel=True)
                if self._stale_pages.get(ino) == failures:
                    del self._stale_pages[ino]

    def kernel_cache_valid(self, ino: InodeNo) -> bool:
        """Whether the kernel may keep the pages it caches of `ino` when it is opened again: not while
        pages of a failed write may be among them (the open then drops them, before it returns)."""
        return ino not in self._stale_pages

    def wrote(self, st: Staging, n: int) -> None:
        """`n` bytes were written to `st`: every WRITE_BACK_STEP bytes, have the disk begin writing what
        it holds (by `begin_write_backs`); returns at once.

        The kernel would keep it dirty in memory up to its dirty limits, and an fsync(2) then waits for
        all of it (about 0.3 s per GiB on the benchmark machine). Begun as it is written, the disk's
        writing overlaps the program's. The write that asks does not wait: a slow disk must not slow it
        more than the kernel's dirty limits do.
        """
        st.unsynced += n
        if st.unsynced < WRITE_BACK_STEP:
            return
        st.unsynced = 0
        if st.path in self._write_backs:  # one at a time per file: the next takes what came meanwhile
            return
        try:
            fd = os.dup(st.fd)  # of its own: the staging file may be discarded meanwhile
        except OSError as e:  # (out of descriptors) the fsync will wait for it instead
            log.debug("write-back of %s not asked: %s", st.path, e)
            return
        self._write_backs[st.path] = fd
        self._write_backs_wakeup.set()

    async def begin_write_backs(self) -> None:
        """Background task: begin the disk writes `wrote` asked for. Cancel to stop."""
        while True:
            await self._write_backs_wakeup.wait()
            self._write_backs_wakeup = trio.Event()
            fds, self._write_backs = list(self._write_backs.values()), {}
            await trio.to_thread.run_sync(_begin_write_backs, fds)

    def fsync(self, st: Staging) -> None:
        """Make a staging file and the catalog's commits survive a power loss. Blocks: run in a thread."""
        os_call(os.fsync, st.fd)
        if not st.fsynced_dir:
            fsync_path(st.path.parent, directory=True)
            st.fsynced_dir = True
        st.fsynced = True
        self.catalog.sync()


def _begin_write_backs(fds: list[int]) -> None:
    for fd in fds:
        try:
            start_write_back(fd)
        except OSError as e:  # the fsync will wait for it instead
            log.debug("write-back not begun: %s", e)
        finally:
            os.close(fd)


def mark_dirty(live: Live, mtime_ns: int) -> None:
    """Record that the inode's staging file changed: its content is a new version to commit."""
    st = live.staging
    assert st is not None
    if not st.dirty:
        st.dirty = True
        st.dirty_since = time.monotonic()
    st.mtime_ns = mtime_ns
    st.changed_ns = now_ns()


def os_call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a local file operation; ENOSPC becomes NoSpace, any other OSError an FsError with its errno."""
    try:
        return fn(*args, **kwargs)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise NoSpace("no space left on the store's disk") from None
        err = FsError(f"{getattr(fn, '__name__', fn)} failed: {e.strerror}")
        err.errno = e.errno or errno.EIO
        raise err from None
