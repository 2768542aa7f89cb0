"""Follow: keep a read-only store at its remote volume's newest checkpoint (a follower mount's refresh).

`Follower` is a background task of `vfs mount --follow`: every `interval` seconds, and when asked
(`vfs refresh`), it pulls (`vfs.sync.pull`) in a thread; when the volume moved on it installs the new
catalog and hands what changed to `changed` (the mount makes the kernel forget it). A refresh that fails
(the remote unreachable, an object damaged or not there yet) keeps the state the store has, is retried
at the next interval, and `status()` says so.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from vfs.backend import Backend
from vfs.errors import VfsError
from vfs.repository import Repository
from vfs.sync import pull
from vfs.sync.checkpoint import written_by
from vfs.types import InodeNo

log = logging.getLogger(__name__)

Names = list[tuple[InodeNo, bytes, InodeNo]]
Changed = Callable[[set[InodeNo], Names], Awaitable[None]]


async def _nothing_cached(inos: set[InodeNo], names: Names) -> None:
    await trio.lowlevel.checkpoint()


class Follower:
    """Refreshes `repo` from `backend` (the store's remote, sealing for an encrypted volume).

    Args:
        interval: seconds between refreshes.
        changed: awaited after each install with the inodes and names that changed.
        installing: entered before an install and left after its `changed`: what reads the store waits.
    """

    def __init__(self, repo: Repository, backend: Backend, *, interval: float, changed: Changed = _nothing_cached,
                 installing: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
                 ) -> None:
        self.repo = repo
        self._backend = backend
        self.interval = interval
        self._changed = changed
        self._installing = installing
        self._lock = trio.Lock()  # one refresh at a time
        self._threads = trio.CapacityLimiter(1)
        self._wake = trio.Event()
        self._last: dict[str, Any] = {}
        self._error: str | None = None
        self._failing_since: float | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Refresh every `interval` seconds until cancelled."""
        task_status.started()
        while True:
            with trio.move_on_after(self.interval):
                await self._wake.wait()
            self._wake = trio.Event()
            try:
                await self.refresh()
            except VfsError:
                pass  # kept in `status`; retried at the next interval

    async def refresh(self) -> dict[str, Any]:
        """Refresh now and return what it did; raises what stopped it (the store keeps its state)."""
        async with self._lock:
            try:
                answer = await self._refresh()
            except VfsError as e:
                if self._error is None:
                    log.warning("refresh from %s failed (the mount keeps showing checkpoint %s): %s",
                                self._backend.url, self._last.get("seq"), e)
                    self._failing_since = time.time()
                self._error = str(e)
                raise
            if self._error is not None:
                log.info("refresh from %s works again", self._backend.url)
            self._error = self._failing_since = None
            return answer

    async def _refresh(self) -> dict[str, Any]:
        repo, store = self.repo, self.repo.path
        manifest = await trio.to_thread.run_sync(pull.current_manifest, repo, limiter=self._threads)
        prepared = await trio.to_thread.run_sync(pull.prepare, self._backend, store, repo.catalog, manifest,
                                                 limiter=self._threads)
        checked = time.time()
        if prepared is None:
            self._last.update(checked=checked, seq=manifest.seq if manifest else None,
                              epoch=manifest.epoch if manifest else None)
            return {"changed": False, **self._last}
        with self._installing():
            old_head = await trio.to_thread.run_sync(pull.apply, repo, prepared, limiter=self._threads)
            catalog = repo.catalog
            inos, names = await trio.to_thread.run_sync(catalog.changed_since, old_head, limiter=self._threads)
            await self._changed(inos, names)
        self._last = {"checked": checked, "seq": prepared.manifest.seq, "epoch": prepared.manifest.epoch,
                      "installed": time.time(), "writer": written_by(prepared.pointer)}
        log.info("refreshed to checkpoint %d (epoch %d): %d inodes, %d names changed, %d bytes fetched",
                 prepared.manifest.seq, prepared.manifest.epoch, len(inos), len(names), prepared.fetched)
        return {"changed": True, "fetched": prepared.fetched, "inodes": len(inos), "names": len(names), **self._last}

    def wake(self) -> None:
        """Refresh soon (without waiting for it)."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """The last refresh, and the failure of the ones since, if they fail."""
        return {"url": self._backend.url, "interval": self.interval, **self._last, "error": self._error,
                "failing_since": self._failing_since}
