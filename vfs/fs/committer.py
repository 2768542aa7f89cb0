"""The committer: turns closed (and long-dirty) staging files into versions, many per transaction.

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
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from vfs.fs.handles import Live, OpenFiles
from vfs.fs.staging import StagingFiles
from vfs.fs.views import VersionList, Views, is_synthetic
from vfs.repository import Repository
from vfs.types import InodeNo

log = logging.getLogger(__name__)

# Small files commit in large batches: one pack fsync and one transaction for all of them. Measured
# (10,000 creates of 1-8 KiB files through FUSE): batches of up to 256 gathered for 0.2 s cost the
# daemon 0.90 ms of CPU per file where batches of 12 (each begun as the one before ended) cost 1.23 ms,
# and creates ran 14% faster. A settle or a history lookup commits the saves it needs at once, whatever
# the wait.
_COMMIT_BATCH = 256
_COMMIT_GATHER = 0.2  # seconds
# Tree edits join the catalog's open batch (journalled: they survive a killed daemon) for this long, or
# until this many: `rm -rf` or `tar xf` then cost a commit per batch instead of one per name.
_EDIT_GATHER = 0.02  # seconds
_EDIT_BATCH = 1000


class Committer:
    """The queue of inodes to commit, and the background tasks that commit it.

    Args:
        repo: the store the versions are committed to.
        files: the open-file table whose staging files are committed.
        staging: discards staging files once committed.
        threads: the limiter of the filesystem's blocking work (ingesting runs under it).
        views: history, whose lookups settle the saves they show first.
        version_interval: seconds after which a file kept open and dirty is committed anyway.
        flush_kernel: makes the kernel write back the dirty pages it caches of files open for writing.
    """

    def __init__(
        self, repo: Repository, files: OpenFiles, staging: StagingFiles, threads: trio.CapacityLimiter,
        views: Views, *, version_interval: float, flush_kernel: Callable[[], Awaitable[None]],
    ) -> None:
        self.repo = repo
        self.catalog = repo.catalog
        self.version_interval = version_interval
        self._files = files
        self._staging = staging
        self._threads = threads
        self._views = views
        self._flush_kernel = flush_kernel
        # Inodes queued for the committer, in queue order: saves are numbered in the order they happened.
        self.pending: dict[InodeNo, None] = {}
        self._wakeup = trio.Event()
        self._batch_full = trio.Event()
        self._commit_lock = trio.Lock()
        self._edits_wakeup = trio.Event()
        self.catalog.on_batched = self.batched_edit

    async def run(self) -> None:
        """Background task: commit what is queued, a batch at a time. Cancel to stop."""
        while True:
            await self._wakeup.wait()
            # Gather: a burst of small files then costs one pack fsync and one transaction. Waiting is
            # free for durability, since the staging files already survive a killed daemon.
            with trio.move_on_after(_COMMIT_GATHER):
                await self._batch_full.wait()
            self._wakeup = trio.Event()
            self._batch_full = trio.Event()
            # What is queued now; what closes meanwhile waits for the next gather. Committing on instead,
            # under a steady stream of closes every batch after the first held only the files closed
            # while the one before committed: 10,000 creates made 841 batches of 12 files on average.
            last = next(reversed(self.pending), None)
            if last is not None and not await self.commit_pending(until=[last]):
                await trio.sleep(1)  # back off; what failed is still pending
            if self.pending:
                # Queued meanwhile, or left behind: a file deleted before its batch leaves the queue,
                # and if it was `last`, the commit stops there.
                self._wakeup.set()

    def batched_edit(self) -> None:
        """A tree edit joined the catalog's open batch (`Catalog.on_batched`): commit it soon."""
        if self.catalog.batched >= _EDIT_BATCH:
            try:
                self.catalog.commit_batch()
                return
            except Exception:  # logged by commit_batch; the edit is journalled: retried by commit_edits
                pass
        self._edits_wakeup.set()

    async def commit_edits(self) -> None:
        """Background task: commit the catalog's batch of edits a moment after it opened. Cancel to stop.

        Inline: committing a batch writes its pages to the WAL, without an fsync.
        """
        while True:
            await self._edits_wakeup.wait()
            await trio.sleep(_EDIT_GATHER)
            self._edits_wakeup = trio.Event()
            try:
                self.catalog.commit_batch()
            except Exception:  # logged by commit_batch; the batch stays open
                await trio.sleep(1)
                self._edits_wakeup.set()

    async def interval_timer(self) -> None:
        """Background task: queue files kept open and dirty for `version_interval`. Cancel to stop."""
        while True:
            await trio.sleep(min(self.version_interval, 30.0) / 2)
            if any(live.writers for live in self._files.live.values()):
                # What applications write to files they keep open may sit in the kernel's writeback
                # cache for 30 s or more, unseen by us: fetch it, or short intervals could not hold.
                await self._flush_kernel()
            cutoff = time.monotonic() - self.version_interval
            for live in list(self._files.live.values()):
                st = live.staging
                if st is not None and st.dirty and st.dirty_since <= cutoff:
                    self.queue(live.ino)

    def queue(self, ino: InodeNo) -> None:
        self.pending[ino] = None
        self._wakeup.set()
        if len(self.pending) >= _COMMIT_BATCH:
            self._batch_full.set()

    async def commit_pending(self, until: Collection[InodeNo] | None = None) -> bool:
        """Commit queued dirty inodes in queue order; False if a batch failed.

        All of them, also those queued meanwhile; or, given `until`, only as far as the queue holds any
        of those: a caller waiting for some saves then never waits for later ones (under a steady
        stream of closes it would wait forever), and saves still commit in the order they were made.
        """
        async with self._commit_lock:
            while self.pending and (until is None or any(ino in self.pending for ino in until)):
                batch: list[Live] = []
                while self.pending and len(batch) < _COMMIT_BATCH:
                    ino = next(iter(self.pending))
                    del self.pending[ino]
                    live = self._files.live.get(ino)
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
            # StagingFiles.write_failed), so the kernel's cached pages stay true: reads go on serving
            # the staged content, which survives a killed daemon and commits once this succeeds.
            log.exception("committing %d file(s) failed; they stay dirty and will be retried", len(items))
        finally:
            for live in batch:
                assert live.staging is not None and live.committing is not None
                if not committed:  # also when cancelled: nothing may be forgotten
                    live.staging.dirty = True
                    self.pending[live.ino] = None
                live.committing.set()
                live.committing = None
        if committed:
            for live in batch:
                self.maybe_forget(live)
        return committed

    async def flush_all(self) -> bool:
        """Commit every dirty staging file, open or not, and the batch of edits; False if some could
        not be committed."""
        for live in self._files.live.values():
            if live.staging is not None and live.staging.dirty:
                self.pending[live.ino] = None
        committed = await self.commit_pending()
        try:
            self.catalog.commit_batch()  # (a copy of the catalog made next sees them)
        except Exception:  # logged by commit_batch; the batch stays open
            return False
        return committed

    async def close(self) -> None:
        """Commit everything and release staging files (unmount); the repository stays open.

        What cannot be committed now (a full disk) stays in staging/ and is recovered at next start.
        """
        if not await self.flush_all():
            log.error("some files could not be committed; they stay in %s for the next mount", self.repo.staging)
        self.catalog.on_batched = None
        for live in list(self._files.live.values()):
            live.opens = live.writers = 0
            if live.staging is not None and live.staging.dirty:
                os.close(live.staging.fd)  # keep the file: it is the journal of that content
                del self._files.live[live.ino]
            else:
                self.maybe_forget(live)

    def maybe_forget(self, live: Live) -> None:
        """Drop the staging file and in-memory state once nothing needs them."""
        if live.opens > 0 or live.busy > 0 or live.committing is not None:
            return
        st = live.staging
        if st is not None:
            if st.dirty and not live.deleted:
                # Saved content is history even if its name is gone (a temp file renamed over a
                # file, then itself replaced by the next save): the committer still needs it.
                self.queue(live.ino)
                return
            self._staging.discard(st)
            live.staging = None
        del self._files.live[live.ino]
        self.pending.pop(live.ino, None)

    async def settle(self, live: Live) -> None:
        """Commit a closed but not yet committed state before it changes again: every save is a version.

        Commits of closed files are gathered for a moment; a file reopened for writing within that
        moment would otherwise fold two saves into one version.
        """
        if live.writers == 0 and live.ino in self.pending:
            await self.commit_pending(until=[live.ino])

    async def settle_history(self, ino: InodeNo | None) -> None:
        """Commit the unsettled saves of `ino`'s history (None: all), if any: those queued, and wait
        for those being committed. The saves queued before them commit first (queue order)."""
        unsettled = [live.ino for live in self._files.live.values()
                     if live.ino in self.pending or live.committing is not None]
        if ino is not None and unsettled:
            lineage = self.catalog.lineage(ino)
            unsettled = [i for i in unsettled if self.catalog.lineage(i) == lineage]
        if unsettled:
            # Taking the commit lock also waits for a batch in flight, which may hold some of them.
            await self.commit_pending(until=[i for i in unsettled if i in self.pending])

    async def settle_lookup(self, parent: InodeNo, name: bytes) -> None:
        """Before history resolves `name` in `parent`: commit the unsettled saves it may show.

        In a version listing (FILE@/N), those of that file's history. For PATH@SPEC in a live
        directory, those of the file PATH names, or every one when PATH is a directory (DIR@TIME shows
        a subtree). Nothing when PATH names nothing now, nor inside snapshot and time views (their
        commit is fixed): real names with '@' are common (node_modules/.pnpm/pkg@1.2.3), and settling
        for each of them would commit every pending save early.
        """
        if is_synthetic(parent):
            node = self._views.node(parent)
            if isinstance(node, VersionList):
                await self.settle_history(node.ino)
            return
        base, at, _ = name.rpartition(b"@")
        ino = self.catalog.lookup(parent, base) if at and base else None
        if ino is not None:
            mode = self.catalog.attr(ino).mode
            if stat.S_ISDIR(mode):
                await self.settle_history(None)
            elif stat.S_ISREG(mode):
                await self.settle_history(ino)

    @asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """No version is committed while inside (maintenance that must not race the committer)."""
        async with self._commit_lock:
            yield
