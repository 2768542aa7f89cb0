"""The maintenance service: prune, gc (local and remote), sync and status of one store, mounted or not.

The control server (store mounted) and the CLI (store unmounted, its lock held) both ask this one
service, so each request is driven one way. What differs between the two cases is given to the
constructor, never tested for by the callers:

- *mounted*: the running filesystem's hooks (`LiveMount`: commit what open files hold, pause the
  committer, name the open inodes) and the daemon's running uploader (None: no remote);
- *unmounted*: no hooks; an uploader is opened for the request that needs one, by the one factory
  `open_uploader` (or one the caller passes), and closed after it.

Requests run on a trio loop (the daemon's, or one `trio.run` of the CLI's); store work that takes long
runs in a thread. One prune, gc or restore at a time (`lock`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from vfs.errors import BackendError, StoreError
from vfs.fs.filesystem import FileSystem
from vfs.maintenance import gc as garbage
from vfs.maintenance import prune as pruning
from vfs.maintenance import put as putting
from vfs.maintenance import remote as remote_gc
from vfs.maintenance.retention import Policy
from vfs.repository import Repository
from vfs.sync.checkpoint import Manifest
from vfs.sync.failure import load_failure
from vfs.sync.remote import no_remote, require_remote
from vfs.sync.uploader import Uploader, open_uploader, status_of
from vfs.types import InodeNo

log = logging.getLogger(__name__)

Step = Callable[[str], None]  # called before each step that changes the store (crash points, tests)
Progress = Callable[[int, int, int, int], None]  # (bytes done, bytes in all, objects done, objects in all)

# What a remote gc may meet after the local part is done: reported beside the local result, not raised.
REMOTE_FAILURES = (BackendError, StoreError, OSError)


def _no_step(what: str) -> None:
    pass


@dataclass(frozen=True)
class LiveMount:
    """The running filesystem, as maintenance needs it while the store is mounted."""

    flush: Callable[[], Awaitable[None]]  # commit what open files hold (raises if some cannot be)
    commits_paused: Callable[[], AbstractAsyncContextManager[None]]  # no version is committed inside
    open_inodes: Callable[[], Iterable[InodeNo]]  # files whose content must outlive a prune
    being_written: Callable[[InodeNo], bool] = putting.never_written  # a put must not commit over its staging file
    changed: Callable[[InodeNo], None] = putting.nothing_cached  # the kernel drops what it caches of an inode


class Maintenance:
    """Prune, gc, sync and status of `repo`.

    Args:
        mount: the live filesystem's hooks when the store is mounted (None: unmounted).
        uploader: the daemon's running uploader (mounted only; None: the store has no remote).
        open_uploader: how an unmounted store's uploader is made (for tests to replace).
    """

    def __init__(self, repo: Repository, *, mount: LiveMount | None = None, uploader: Uploader | None = None,
                 open_uploader: Callable[[Repository], Uploader] = lambda repo: open_uploader(repo, max_pause=5.0),
                 ) -> None:
        if uploader is not None and mount is None:
            raise ValueError("a running uploader belongs to a mounted store: pass its mount too")
        self.repo = repo
        self.mount = mount
        self._uploader = uploader
        self._open_uploader = open_uploader
        self.lock = trio.Lock()  # one prune, gc or restore at a time (restore takes it too)

    @classmethod
    def of_mount(cls, fs: FileSystem, uploader: Uploader | None) -> Maintenance:
        """The service of a mounted store: `fs` serves it, `uploader` replicates it (None: no remote)."""
        mount = LiveMount(flush=fs.commit_open_files, commits_paused=fs.commits_paused, open_inodes=fs.open_inodes,
                          being_written=fs.is_being_written, changed=fs.invalidate)
        return cls(fs.repo, mount=mount, uploader=uploader)

    @property
    def has_remote(self) -> bool:
        return self._uploader is not None if self.mount is not None else self.repo.remote is not None

    # -- prune and gc ----------------------------------------------------------------------------
    async def prune(self, policy: Policy, *, dry_run: bool = False, step: Step = _no_step) -> dict[str, Any]:
        """Plan (and unless `dry_run`, apply) a retention policy; files open in the mount keep their content."""
        catalog = self.repo.catalog
        async with self.lock:
            keep: set[int] = set()
            if self.mount is not None:
                await self.mount.flush()  # what open files hold is the latest version: never pruned
                keep = catalog.current_version_ids_of(self.mount.open_inodes())
            plan = await trio.to_thread.run_sync(lambda: pruning.plan(catalog, policy, keep_versions=keep))
            answer = plan.as_json()
            if not dry_run:
                step("apply")
                answer["deleted"], answer["deleted_bytes"] = await trio.to_thread.run_sync(
                    lambda: pruning.apply(catalog, plan, step=step))
        return answer

    async def gc(self, *, dry_run: bool = False, remote: bool = True, step: Step = _no_step) -> dict[str, Any]:
        """Local gc, then (with `remote`, when the store has one) remote gc.

        Mounted, the committer is paused during local gc: no entry is appended meanwhile that gc could
        take for garbage. A remote gc that fails leaves the local result standing: its error is the
        answer's `remote_error`. `step` marks the local steps only.
        """
        async with self.lock:
            async with self._commits_paused():
                result = await trio.to_thread.run_sync(
                    lambda: garbage.collect(self.repo, dry_run=dry_run, step=step))
            answer = result.as_json()
            # A mounted dry run has never planned the remote part (the daemon's answer lacks "remote").
            if remote and self.has_remote and not (dry_run and self.mount is not None):
                try:
                    answer["remote"] = (await self._gc_remote(dry_run=dry_run)).as_json()
                except REMOTE_FAILURES as e:
                    answer["remote_error"] = str(e)
        return answer

    async def gc_remote(self, *, dry_run: bool = False, step: Step = _no_step) -> remote_gc.RemoteGcResult:
        """Remote gc alone (see `vfs.maintenance.remote`); `step` marks its checkpoint and each deletion."""
        async with self.lock:
            return await self._gc_remote(dry_run=dry_run, step=step)

    async def _gc_remote(self, *, dry_run: bool, step: Step = _no_step) -> remote_gc.RemoteGcResult:
        """Forget dead pack rows, upload a checkpoint, delete objects; uploads held off throughout."""
        repo = self.repo
        result = remote_gc.RemoteGcResult()
        if dry_run:
            result.packs_forgotten = list(await trio.to_thread.run_sync(remote_gc.dead_packs, repo))
            return result

        def forget() -> None:
            result.packs_forgotten = remote_gc.forget_dead(repo)
            step("checkpoint")

        async with self._uploader_for_request() as uploader:
            await uploader.checkpoint_between(forget, lambda backend: remote_gc.sweep(repo, backend, result,
                                                                                       step=step))
        return result

    async def _flush(self) -> None:
        if self.mount is not None:
            await self.mount.flush()

    @asynccontextmanager
    async def _commits_paused(self) -> AsyncIterator[None]:
        if self.mount is None:
            yield  # unmounted: this process holds the store's lock, nothing else commits
            return
        await self.mount.flush()
        async with self.mount.commits_paused():
            yield

    # -- put -------------------------------------------------------------------------------------
    async def put(
        self, items: list[putting.PutItem], *, uid: int, gid: int, checksum: bool = False,
        progress: putting.Advance = putting.no_progress,
    ) -> putting.PutResult:
        """Local files and directories into the volume (see `vfs.maintenance.put`).

        Not while prune or gc run (gc would take the chunks ingested but not yet committed for garbage):
        one at a time with them, as a restore is.
        """
        async with self.lock:
            if self.mount is None:
                return await putting.put(self.repo, items, uid=uid, gid=gid, checksum=checksum, progress=progress)
            return await putting.put(self.repo, items, uid=uid, gid=gid, checksum=checksum, progress=progress,
                                     being_written=self.mount.being_written, changed=self.mount.changed)

    # -- sync and status -------------------------------------------------------------------------
    async def request_sync(self, *, wait_seconds: float | None = None) -> dict[str, Any]:
        """Mounted: start a full sync round (open files committed first); await it up to `wait_seconds`
        if given. The answer: the round's number ("target"), whether it is done, the uploader's status."""
        uploader = self._running_uploader()
        await self._flush()  # what open files hold belongs to "everything up to now"
        target = uploader.request()
        if wait_seconds is not None:
            with trio.move_on_after(wait_seconds):
                await uploader.wait_round(target)
        return {"target": target, "synced": uploader.done >= target, **uploader.status()}

    async def sync_now(self, *, limit: float, progress: Progress = lambda *_: None,
                       ) -> dict[str, Any] | None:
        """Unmounted: upload everything up to now in this process, within `limit` seconds.

        Returns None when the remote holds it all, else the status the sync was left in when time ran
        out (what it met is kept in the store for `vfs status`).

        Raises:
            UsageError: the store has no remote.
            BackendError: a permanent failure (RemoteConflict among them).
        """
        require_remote(self.repo)
        async with self._uploader_for_request() as uploader:
            start = uploader.status()
            first, first_objects = max(start["backlog_bytes"], 1), start["backlog_objects"]
            final: BackendError | None = None  # raised outside the nursery: a group has no one-line message
            async with trio.open_nursery() as nursery:
                async def show() -> None:
                    while True:
                        now = uploader.status()
                        progress(max(first - now["backlog_bytes"], 0), first,
                                 max(first_objects - now["backlog_objects"], 0), first_objects)
                        await trio.sleep(0.25)

                nursery.start_soon(show)
                with trio.move_on_after(limit) as scope:
                    try:
                        await uploader.drain()
                        progress(first, first, first_objects, first_objects)
                    except BackendError as e:
                        final = e
                nursery.cancel_scope.cancel()
            if final is not None:
                raise final
            if scope.cancelled_caught:
                uploader.save_failure()  # the round was cut short: `vfs status` shows what it met
                return uploader.status()
        return None

    async def publish_checkpoint(self, *, new_base: bool = False) -> None:
        """A round with a forced checkpoint (a new base when asked): fsck's repair of the remote."""
        async with self._uploader_for_request() as uploader:
            await uploader.publish_checkpoint(new_base=new_base)

    def status(self) -> dict[str, Any]:
        """The sync status `vfs status` shows: the running uploader's, or what the last sync met."""
        if self.mount is not None and self._uploader is not None:
            return {"mounted": True, **self._uploader.status()}
        if self.mount is not None:  # no remote: what the unmounted form says ("remote": null), not an error
            return {"mounted": True, **status_of(self.repo, Manifest.load(self.repo.path))}
        failure, conflict = load_failure(self.repo.path)
        return {"mounted": False,
                **status_of(self.repo, Manifest.load(self.repo.path), failure=failure, conflict=conflict)}

    # -- the uploader ----------------------------------------------------------------------------
    def _running_uploader(self) -> Uploader:
        if self._uploader is None:  # mounted without a remote (or unmounted: no uploader runs)
            raise no_remote(self.repo.path)
        return self._uploader

    @asynccontextmanager
    async def _uploader_for_request(self) -> AsyncIterator[Uploader]:
        """The daemon's uploader, or (unmounted) one opened for this request and closed after it."""
        if self.mount is not None:
            yield self._running_uploader()
            return
        uploader = self._open_uploader(self.repo)
        try:
            yield uploader
        finally:
            uploader.close()


__all__ = ["LiveMount", "Maintenance"]
