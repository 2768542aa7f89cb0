"""The uploader: a background task that replicates the store to its remote while it is in use.

Each *round* uploads the sealed packs the remote lacks (several in flight, boto3 in threads) and,
when a checkpoint is due or asked for, takes one: copy the catalog and seal the open pack, upload
the packs that sealed, then the checkpoint objects and the pointer (see `vfs.sync.checkpoint`).
Failures are retried by the backend's retry wrapper; a round that still fails is retried after a
growing pause (capped at `max_pause`), forever: during an outage the backlog stays on local disk
and drains when the endpoint is back. (`drain`, for a command run by hand, pauses alike but gives up
on a permanent failure.) Requests are retried by the backend wrapper; rounds are retried here,
because a round also fails on local errors (disk, catalog) and when the wrapper gives up. Nothing
here runs on the trio loop longer than a small catalog transaction, so the mount stays responsive
however slow or dead the endpoint is.

Stopping (`stop()`, or cancellation) abandons requests in flight: what they sent is found by HEAD
next time and not sent again; the backlog stays on disk.

A round that would upload anything first holds the writer lease (`vfs.sync.lease`: taken if free,
renewed every ttl/3 while the uploader runs, checked again right before each pointer PUT, released
when it stops) and checks the remote's head (`checkpoint.check_head`): if another store holds the lease
(`LeaseHeld`) or has published since (`RemoteConflict`), the uploader stops for good, and the store
keeps all its data. The current *failure* (what, since when, how many attempts) is what `vfs status`
shows: the backend's while its requests fail, else the last round's; it is also kept in
`STORE/sync/failure.json` until a round succeeds, for `vfs status` of an unmounted store.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from vfs.backend import Backend, Failure
from vfs.errors import BackendError, LeaseHeld, RemoteConflict, StoreError
from vfs.repository import Repository
from vfs.sync import checkpoint
from vfs.sync.backlog import Backlog, backlog, evict, report_backlog, status_of
from vfs.sync.failure import failure_file, save_failure
from vfs.sync.lease import WriterLease
from vfs.sync.remote import open_store_backend, sealed_for
from vfs.sync.sealed import publish_key_objects
from vfs.sync.transfer import upload_marked
from vfs.types import PackNo

log = logging.getLogger(__name__)

__all__ = ["Backlog", "Uploader", "backlog", "evict", "open_uploader", "report_backlog", "started_marker",
           "status_of"]

T = TypeVar("T")

ROUND_FAILURES = (BackendError, StoreError, OSError)  # a round that meets one fails; it may be retried


class Uploader:
    """Replicates `repo` to `backend`; `run` is the task, `sync` asks for (and awaits) a full round.

    Args:
        checkpoint_interval: seconds between checkpoints while the catalog changes.
        poll_interval: seconds between looks for newly sealed packs.
        uploads: uploads in flight at most.
        cache_size: bytes of local pack data to keep at most (None: no cap).
    """

    def __init__(
        self, repo: Repository, backend: Backend, *, checkpoint_interval: float = 60.0, poll_interval: float = 2.0,
        uploads: int = 4, max_pause: float = 60.0, cache_size: int | None = None,
    ) -> None:
        self.repo = repo
        self.backend = sealed_for(repo, backend)  # an encrypted store never sends a plain object
        self.checkpoint_interval = checkpoint_interval
        self.poll_interval = poll_interval
        self.max_pause = max_pause
        self.cache_size = cache_size
        self._limiter = trio.CapacityLimiter(uploads)
        self._cpu = trio.CapacityLimiter(1)  # catalog copies and hashing: one at a time
        self._wake = trio.Event()
        self._changed = trio.Event()
        self._round_lock = trio.Lock()  # held by a round, and across `checkpoint_between`
        self._cancel = trio.CancelScope()
        self._want_round = 0  # rounds asked for by `sync` (the newest one's number)
        self._started = 0
        self._done = 0  # the newest round that completed
        self._last_checkpoint = 0.0
        self.manifest = checkpoint.Manifest.load(repo.path)
        self.lease = WriterLease(repo.path, self.backend, repo.store_id)  # sealed for an encrypted volume
        # Renewals have a thread of their own: uploads that hang (a stalled endpoint) hold every slot of
        # `_limiter`, and a lease left to wait for one expired under a writer that was still alive.
        self._lease_limiter = trio.CapacityLimiter(1)
        self._config_checked = False  # once per uploader: `remote set` may have changed the prefix since
        self.failure: Failure | None = None  # of the last round (None: it succeeded)
        self.conflict = False  # the last round met a RemoteConflict: this uploader has stopped for good
        self._error_exit: int | None = None  # the exit code of the last round's error (7: the lease is held)
        self._conflict_cls: type[RemoteConflict] = RemoteConflict  # LeaseHeld: another store holds the lease
        self._failure_saved = failure_file(repo.path).exists()
        self.cache_note: str | None = None
        self.sent_bytes = 0  # pack and catalog bytes put by this process
        self.sent_objects = 0
        self.in_flight = 0

    # -- the task --------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Replicate until cancelled or `stop()`, or until another store writes the remote; then release
        the writer lease (a clean unmount hands it over at once)."""
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._keep_lease)
                    task_status.started()
                    await self._rounds()
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + 10.0
                await trio.to_thread.run_sync(self.release_lease, abandon_on_cancel=True)

    async def _rounds(self) -> None:
        failures = 0
        logged: str | None = None  # the failure last logged: a lasting one is logged once
        while True:
            due = time.monotonic() - self._last_checkpoint >= self.checkpoint_interval
            try:
                await self.round(checkpoint_due=due or self._want_round > self._done)
            except ROUND_FAILURES as e:
                if self.conflict:
                    log.error("sync to %s stopped: %s", self.backend.url, e)
                    return  # for good: `request` and `wait_round` say why from now on
                failures += 1
                if logged != str(e):
                    log.warning("sync to %s failed, will retry: %s", self.backend.url, e)
                logged = str(e)
                with trio.move_on_after(self._pause_after(failures)):
                    await self._wake.wait()
                self._wake = trio.Event()
                continue
            if failures:
                log.info("sync to %s works again", self.backend.url)
            failures, logged = 0, None
            with trio.move_on_after(self.poll_interval):
                await self._wake.wait()
            self._wake = trio.Event()

    def stop(self) -> None:
        self._cancel.cancel()

    async def _keep_lease(self) -> None:
        """Renew the writer lease every ttl/3 while it is held; stop syncing for good if it was taken."""
        while True:
            await trio.sleep(self.lease.timing.ttl / 3)
            if not self.lease.held:
                continue
            try:
                await trio.to_thread.run_sync(self.lease.renew, limiter=self._lease_limiter, abandon_on_cancel=True)
            except LeaseHeld as e:
                self._failed(e)
                self.stop()
                return
            except ROUND_FAILURES as e:  # the endpoint is down: the next renewal (or round) tries again
                log.warning("cannot renew the writer lease of %s: %s", self.backend.url, e)

    def release_lease(self) -> None:
        """Give the writer lease up if this store holds it (a failure is logged: the lease then expires)."""
        try:
            if self.lease.release():
                log.info("writer lease of %s released", self.backend.url)
        except ROUND_FAILURES as e:
            log.warning("cannot release the writer lease of %s (it expires in %.0fs): %s", self.backend.url,
                        self.lease.valid_for(), e)

    async def sync(self) -> None:
        """Ask for a full round (packs and a checkpoint) that starts after this call; await it.

        Waits through failures (see `error`): the caller bounds it with trio.move_on_after.
        """
        await self.wait_round(self.request())

    def request(self) -> int:
        """Ask for a full round; returns its number (see `done`).

        Raises:
            RemoteConflict: this uploader has stopped (another store wrote the remote).
        """
        self._check_stopped()
        self._want_round = self._started + 1
        self._wake.set()
        return self._want_round

    @property
    def done(self) -> int:
        return self._done

    async def wait_round(self, target: int) -> None:
        """Wait until round `target` is done (RemoteConflict if the uploader stops meanwhile)."""
        while self._done < target:
            self._check_stopped()
            await self._changed.wait()

    def _check_stopped(self) -> None:
        if self.conflict and self.failure is not None:
            raise self._conflict_cls(self.failure.message)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # -- one round -------------------------------------------------------------------------------
    async def round(self, *, checkpoint_due: bool = True, force: bool = False, new_base: bool = False) -> None:
        """Upload what the remote lacks; with `checkpoint_due`, end with a checkpoint if the catalog changed.

        `force`: upload a checkpoint even if the remote's seems current (remote gc needs one that
        certainly reflects the catalog now). `new_base`: make it a base (repair of a broken chain).
        Rounds run one at a time.

        Raises:
            RemoteConflict: another store has written the remote; nothing more is uploaded.
            BackendError, StoreError, OSError: the round failed (see `failure`); it may be retried.
        """
        async with self._round_lock:
            await self._round_locked(checkpoint_due=checkpoint_due, force=force, new_base=new_base)

    async def _round_locked(self, *, checkpoint_due: bool = True, force: bool = False, new_base: bool = False) -> None:
        """`round`, its caller holding `_round_lock`."""
        self._check_stopped()
        try:
            await self._round(checkpoint_due=checkpoint_due, force=force, new_base=new_base)
        except ROUND_FAILURES as e:
            self._failed(e)
            raise
        if self.failure is not None or self._failure_saved:
            self.failure = None
            save_failure(self.repo.path, None)
            self._failure_saved = False

    async def publish_checkpoint(self, *, new_base: bool = False) -> None:
        """A round that ends with a checkpoint of the catalog now, even if the remote's seems current;
        with `new_base` a base, not a delta (repair of a broken chain). Raises as `round` does."""
        await self.round(force=True, new_base=new_base)

    async def checkpoint_between(self, before: Callable[[], T], after: Callable[[Backend], None]) -> T:
        """Run `before`, publish a checkpoint, run `after(backend)`, with no other round meanwhile.

        Remote gc needs this: the checkpoint must reflect what `before` changed in the catalog, and no
        upload may start until `after` (the deletions) is done. Both run in a thread; `after` is not
        abandoned on cancel: uploads stay held off until no deletion can be in flight. Returns what
        `before` returned.

        Raises: as `round`, and whatever `before` and `after` raise.
        """
        async with self._round_lock:
            result = await trio.to_thread.run_sync(before)
            await self._round_locked(force=True)
            # Deleting needs the lease too: another writer's packs that no pointer names yet are not garbage.
            await trio.to_thread.run_sync(self.lease.check)
            await trio.to_thread.run_sync(after, self.backend)
        return result

    async def drain(self) -> None:
        """Rounds until one succeeds (the remote then holds everything up to now), pausing between
        failed ones as `run` does. The caller bounds it in time (trio.move_on_after).

        Unlike `run`, which keeps trying for as long as the mount lives, a permanent failure is raised
        at once: a command run by hand should say "access denied" now, not at its timeout.

        Raises:
            BackendError: a permanent failure (RemoteConflict among them).
        """
        failures = 0
        final: BackendError | None = None  # raised outside the nursery: a group has no one-line message
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._keep_lease)  # a long sync outlasts a lease
            while True:
                try:
                    await self.round()
                    break
                except ROUND_FAILURES as e:
                    if isinstance(e, BackendError) and not e.transient:
                        final = e
                        break
                    failures += 1
                    await trio.sleep(self._pause_after(failures))
            nursery.cancel_scope.cancel()
        if final is not None:
            raise final

    def _pause_after(self, failures: int) -> float:
        """Seconds to wait after `failures` rounds failed in a row: doubling, jittered, at most `max_pause`."""
        return random.uniform(0.5, 1.0) * min(self.max_pause, 2.0 ** min(failures, 20))

    def close(self) -> None:
        """Close the backend (for an uploader made by `open_uploader` for one command)."""
        self.backend.close()

    def _failed(self, e: BaseException) -> None:
        """Record why a round failed, here and in the store (for `vfs status` once unmounted)."""
        # Another store holding the lease is waited out (it may release it); losing it, or a head this
        # store has not seen, stops syncing for good.
        conflict = isinstance(e, RemoteConflict) and not (isinstance(e, LeaseHeld) and self.lease.local.lost is None)
        self._error_exit = e.exit_code if isinstance(e, BackendError) else None
        permanent = isinstance(e, BackendError) and not e.transient
        live = self.backend.failure()
        if live is not None and not conflict:
            self.failure = live  # the requests' own record: since when they fail, how many did
        elif self.failure is not None and self.conflict == conflict:
            self.failure = self.failure.then(str(e), permanent=permanent)
        else:
            self.failure = Failure(str(e), time.time_ns(), 1, permanent)
        self.conflict = conflict
        self._conflict_cls = LeaseHeld if isinstance(e, LeaseHeld) else RemoteConflict
        # A few hundred bytes once per failed round: not worth a thread hop.
        save_failure(self.repo.path, self.failure, conflict=conflict)
        self._failure_saved = True
        self._notify()

    async def _round(self, *, checkpoint_due: bool, force: bool, new_base: bool) -> None:
        self._started += 1
        number = self._started
        repo = self.repo
        if not self._config_checked:
            config: dict[str, Any] = {"store_id": repo.store_id, "config": repo.catalog.meta("config")}
            if repo.encryption is not None:
                config["encryption"] = repo.encryption  # in the clear: a clone must know before it has a key
            try:
                await trio.to_thread.run_sync(
                    lambda: checkpoint.check_config(self.backend, repo.store_id, config, self.manifest,
                                                    replace_unreadable=new_base),
                    limiter=self._limiter, abandon_on_cancel=True)
            except RemoteConflict as e:
                other = self._remote_args("s3://BUCKET/OTHER-PREFIX")
                advice = f"give it a prefix of its own with 'vfs remote set {repo.path} {other}'"
                raise self._advised(e, advice) from None
            if repo.encryption is not None:
                # After the config check (never into another volume's prefix); a clone that finds the config
                # but no key object yet fails in one line until this has run.
                await trio.to_thread.run_sync(publish_key_objects, self.backend, repo.path, limiter=self._limiter,
                                              abandon_on_cancel=True)
            self._config_checked = True
        remote = repo.catalog.remote_packs()
        if force or checkpoint_due or any(p not in remote for p, _ in repo.chunks.sealed_packs()):
            # Before uploading anything: packs sent to a remote that another store has moved on would
            # be orphans there (its gc deletes them), and must not be evicted here as if they were safe.
            await trio.to_thread.run_sync(self._hold_lease, new_base, limiter=self._limiter, abandon_on_cancel=True)
            try:
                await trio.to_thread.run_sync(
                    lambda: checkpoint.check_head(self.backend, self.manifest, replace_unreadable=new_base,
                                                  fenced_below=self.lease.epoch),
                    limiter=self._limiter, abandon_on_cancel=True)
            except LeaseHeld:
                raise
            except RemoteConflict as e:
                await self._lease_lost_first()
                raise self._head_moved(e) from None
        await self._upload_backlog()
        m = self.manifest
        if force:
            checkpoint_due = True
        elif m is not None and m.replaces is None and m.head_commit == repo.catalog.head().no and m.remote_packs == len(
                repo.catalog.remote_packs()):
            checkpoint_due = False  # the remote's checkpoint is current: no catalog copy needed
        if checkpoint_due:
            prepared = await trio.to_thread.run_sync(
                checkpoint.prepare, repo.path, repo.catalog.backup_to, repo.chunks.seal, limiter=self._cpu)
            await self._upload_backlog()
            remote = repo.catalog.remote_packs()
            if force or checkpoint.needed(prepared, self.manifest, len(remote)):
                try:
                    manifest, sent = await trio.to_thread.run_sync(
                        lambda: checkpoint.finish(repo.path, self.backend, prepared, remote, self.manifest,
                                                  repo.store_id, new_base=new_base, epoch=self.lease.epoch,
                                                  fence=self.lease.check, fenced_below=self.lease.epoch),
                        limiter=self._limiter, abandon_on_cancel=True)
                except LeaseHeld:
                    raise  # fenced before the manifest was saved: it still names the last published head
                except RemoteConflict as e:  # the head moved since the check above
                    await self._lease_lost_first()
                    raise self._head_moved(e) from None
                except ROUND_FAILURES:
                    # finish records the new checkpoint before its pointer's PUT: the remote may hold it.
                    self.manifest = checkpoint.Manifest.load(repo.path)
                    raise
                self.manifest = manifest
                self.sent_bytes += sent
                self.sent_objects += 2
                log.info("checkpoint %d uploaded to %s (%s, %d bytes)", manifest.seq, self.backend.url,
                         manifest.chain[-1], sent)
            else:
                prepared.snapshot.unlink(missing_ok=True)
            self._last_checkpoint = time.monotonic()
        m = self.manifest
        # Only packs a published checkpoint names may go: another store's gc would delete the others, were
        # it to write the remote before this store's next checkpoint.
        if self.cache_size is not None and m is not None and m.replaces is None and m.remote_packs == len(
                repo.catalog.remote_packs()):
            self.cache_note = await trio.to_thread.run_sync(evict, repo, self.cache_size, limiter=self._cpu)
        self._done = max(self._done, number)
        self._notify()

    def _hold_lease(self, new_base: bool) -> None:
        """Hold the writer lease (in a thread): take it if it is free; after a take, the head must be one
        this store has seen, else the take is undone (a store behind the volume cannot continue it).

        Raises:
            LeaseHeld: another store holds it. RemoteConflict: the take was undone.
        """
        lease = self.lease
        if lease.held and lease.valid_for() > lease.timing.ttl * 2 / 3:
            return  # checked within ttl/3: the pointer's PUT checks again (`fence`)
        try:
            lease.hold(lambda: checkpoint.check_head(self.backend, self.manifest, replace_unreadable=new_base),
                       seen_epoch=self.manifest.epoch if self.manifest is not None else 0)
        except LeaseHeld:
            raise
        except RemoteConflict as e:
            raise self._head_moved(e) from None

    async def _lease_lost_first(self) -> None:
        """Raise LeaseHeld if the head moved because another store took the lease (the message then says
        so, and the loss is recorded), before the head check's RemoteConflict is raised."""
        if self.lease.held:
            await trio.to_thread.run_sync(self.lease.check, limiter=self._limiter, abandon_on_cancel=True)

    def _head_moved(self, e: RemoteConflict) -> RemoteConflict:
        return self._advised(e, "to keep its changes, clone the remote into a new store"
                                f" ('vfs clone {self._remote_args()} NEWSTORE'), copy them into it and sync that one")

    def _advised(self, e: RemoteConflict, advice: str) -> RemoteConflict:
        """`e` (the facts: who wrote the remote, when) with what it means and what the user can do."""
        return RemoteConflict(f"{e}. This store keeps its data but publishes nothing there (that would erase the"
                              f" other store's commits): {advice}")

    def _remote_args(self, url: str | None = None) -> str:
        """The remote as `vfs clone` and `vfs remote set` take it (with another URL if given)."""
        r = self.repo.remote
        if r is None:
            return url or self.backend.url
        return " ".join([url or r.url, *(["--endpoint-url", r.endpoint_url] if r.endpoint_url else []),
                         *(["--region", r.region] if r.region else [])])

    async def _upload_backlog(self) -> None:
        remote = self.repo.catalog.remote_packs()
        todo = [p for p, _ in self.repo.chunks.sealed_packs() if p not in remote]
        if not todo:
            return
        try:
            async with trio.open_nursery() as nursery:
                for pack in todo:
                    nursery.start_soon(self._upload_one, pack)
        except BaseExceptionGroup as group:
            # The round fails with the first upload's error, which callers catch; a group would escape
            # them (and end the daemon).
            failed, other = group.split(ROUND_FAILURES)
            if failed is None or other is not None:
                raise
            first: BaseException = failed
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None

    async def _upload_one(self, pack: PackNo) -> None:
        marker = started_marker(self.repo, pack)
        async with self._limiter:
            self.in_flight += 1
            try:
                # Abandoned on cancel: a hung PUT must not hold up an unmount (HEAD finds it next time).
                key, size, sent = await trio.to_thread.run_sync(
                    upload_marked, self.backend, self.repo.chunks.pack_file(pack), marker,
                    self.repo.encryption is not None, abandon_on_cancel=True)
            finally:
                self.in_flight -= 1
        self.repo.catalog.add_remote_pack(pack, key, size)
        marker.unlink(missing_ok=True)
        if sent:
            self.sent_bytes += size
            self.sent_objects += 1
        log.debug("pack %d %s %s (%d bytes)", pack, "uploaded as" if sent else "already on the remote as", key, size)
        self._notify()

    # -- reporting -------------------------------------------------------------------------------
    def current_failure(self) -> Failure | None:
        """What keeps sync from succeeding now: a conflict; else the failure requests meet now (they may
        hang and be retried for minutes before a round gives up); else the last round's."""
        if self.conflict:
            return self.failure
        return self.backend.failure() or self.failure

    @property
    def error(self) -> str | None:
        f = self.current_failure()
        return f.message if f is not None else None

    def save_failure(self) -> None:
        """Keep the current failure in the store (`vfs sync` giving up mid-round: a round records its own)."""
        f = self.current_failure()
        if f is not None:
            save_failure(self.repo.path, f, conflict=self.conflict)
            self._failure_saved = True

    def status(self) -> dict[str, Any]:
        return status_of(self.repo, self.manifest, failure=self.current_failure(), conflict=self.conflict,
                         cache_note=self.cache_note,
                         extra={"conflict_exit_code": self._conflict_cls.exit_code if self.conflict else None,
                                "error_exit_code": self._error_exit if self.failure is not None else None,
                                "in_flight": self.in_flight, "sent_bytes": self.sent_bytes,
                                "sent_objects": self.sent_objects, "rounds_done": self._done})


def started_marker(repo: Repository, pack: PackNo) -> Path:
    """`STORE/sync/started/N`: exists while an upload of pack N may have reached the remote unrecorded."""
    return repo.path / checkpoint.STATE_DIR / "started" / str(pack)


def open_uploader(repo: Repository, **options: Any) -> Uploader:
    """The uploader of a store with a remote, configured from its catalog (backend opened here).

    Raises:
        UsageError: the store has no remote.
    """
    backend = open_store_backend(repo)
    cache = repo.catalog.meta_or_none("cache_size")
    return Uploader(repo, backend, cache_size=int(cache) if cache else None, **options)
