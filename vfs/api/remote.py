"""A remote volume opened directly: `vfs.open("s3://BUCKET/PREFIX")`, read-only or as its writer.

The volume is read through its *cache*: a store directory that is a lazy clone of it (made on first
use; shared with `vfs mount --follow`, whose default cache directory is the same), so only the packs
that reads need are downloaded, through the store's normal fetcher. `RemoteVolume` is a `Volume` over
that store, held open and locked for the volume's life.

- Read-only (the default): the cache is brought to the volume's newest checkpoint when opened
  (`vfs.compose.open_follower_store`), and again at each `refresh()`. Every change raises NotWritable.
  A cache that a follower mount serves is read as a mounted store, and refreshed by that daemon.
- Writable: the cache becomes the volume's writer. It is brought up to date first (unless it holds
  changes of its own that a writer left unpublished: pulling would discard them), then takes the
  writer lease (`vfs.sync.lease`; LeaseHeld, naming the holder, if another store holds a live one). A
  writer that loses the race with a publishing writer between the two pulls and tries again. Changes
  are made in the cache; `sync()` publishes them; `close()` publishes what is left and releases the lease.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any

from vfs.api.location import default_follow_cache
from vfs.api.volume import Volume, sync_store
from vfs.api.writer import HeldStoreWriter, Writer
from vfs.backend import Backend
from vfs.catalog.catalog import CATALOG_FILE
from vfs.compose import open_follower_store, open_repository
from vfs.config import RemoteConfig
from vfs.control.client import call, daemon_running
from vfs.errors import BackendError, LeaseHeld, NotWritable, RemoteConflict, StoreLocked, UsageError
from vfs.repository import PassphraseSource, Repository
from vfs.sync import pull
from vfs.sync.backlog import backlog
from vfs.sync.checkpoint import Manifest, check_head
from vfs.sync.lease import Timing, WriterLease
from vfs.sync.remote import open_store_backend, remote_config

log = logging.getLogger(__name__)

TAKE_ATTEMPTS = 3  # pull and take again when a writer published between the pull and the take


def open_remote(url: str, *, writable: bool = False, endpoint_url: str | None = None, region: str | None = None,
                cache_dir: str | os.PathLike[str] | None = None,
                passphrase: PassphraseSource | None = None) -> RemoteVolume:
    """The volume at `url` (`s3://BUCKET/PREFIX` at `endpoint_url`, None: AWS; in `region`, None: from the
    environment or profile), read through a lazy clone in `cache_dir` (None: the follower mount's
    default, ~/.cache/vfs/follow/BUCKET_PREFIX); see the module docstring.

    Raises:
        UsageError: a malformed URL, or `cache_dir` holds a store of another remote.
        BackendError: the endpoint cannot be reached (for a new cache; an existing one shows its last
            state, with a warning, when read-only), the bucket does not exist or cannot be read, or
            the prefix holds no volume (BackendNotFound).
        KeyRequired, WrongPassphrase: an encrypted volume, and no passphrase or a wrong one.
        StoreLocked: another process has the cache open (give another `cache_dir`), or (writable) a
            follower mount serves it.
        StoreError: read-only, and the cache holds changes a writer left unpublished.
        LeaseHeld: writable, and another store holds the volume's writer lease (it is named).
        RemoteConflict: writable, and the cache holds unpublished changes the volume moved past.
    """
    remote = remote_config(url, endpoint_url, region)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_follow_cache(remote.url)
    cache = cache.absolute()
    if daemon_running(cache):
        if writable:
            raise StoreLocked(f"{cache} is the cache of a follower mount of {remote.url}: unmount it to write"
                              " the volume, or give another cache_dir")
        mounted = open_repository(cache, lock=False, passphrase=passphrase)
        if mounted.remote is None or mounted.remote.url != remote.url:
            mounted.close()
            raise UsageError(f"{cache} is a mounted store, not a cache of {remote.url}: give another cache_dir")
        return RemoteVolume(remote, mounted, writable=False, passphrase=passphrase, held=False)
    try:
        repo = open_follower_store(remote, cache, passphrase=passphrase, writer=writable)
    except StoreLocked as e:
        raise StoreLocked(f"{e}: the cache of {remote.url} is in use; give another cache_dir") from None
    try:
        if writable:
            _become_writer(repo)
        return RemoteVolume(remote, repo, writable=writable, passphrase=passphrase)
    except BaseException:
        repo.close()
        raise


def _become_writer(repo: Repository) -> None:
    """Make the store the volume's writer: take its lease, if this store holds the volume's newest state
    (the head check), pulling again when a writer published since the store was brought up to date.

    Raises:
        LeaseHeld: another store holds the lease. RemoteConflict: the store's unpublished changes were
            made over a state the volume has moved past (the take was undone).
    """
    with open_store_backend(repo) as backend:
        for attempt in range(1, TAKE_ATTEMPTS + 1):
            manifest = pull.current_manifest(repo)
            lease = WriterLease(repo.path, backend, repo.store_id)
            try:
                lease.hold(functools.partial(check_head, backend, manifest),
                           seen_epoch=manifest.epoch if manifest else 0)
                return
            except LeaseHeld:
                raise
            except RemoteConflict:
                if attempt == TAKE_ATTEMPTS or pull.has_unpublished(repo.catalog, manifest):
                    raise
                log.info("%s moved on while %s took its lease: pulling again", backend.url, repo.path)
                pull.pull_store(repo, backend)


class RemoteVolume(Volume):
    """A remote volume opened with `vfs.open("s3://...")` (see `vfs.api.remote`).

    Its reads are a `Volume`'s; `refresh()` brings the newest state (read-only), `sync()` publishes
    (writable), and `close()` publishes what is left and releases the writer lease.

    Attributes:
        url: the volume (`s3://BUCKET/PREFIX`). store: the cache directory.
    """

    def __init__(self, remote: RemoteConfig, repo: Repository, *, writable: bool,
                 passphrase: PassphraseSource | None, held: bool = True) -> None:
        super().__init__(repo.path, writable=writable, repository=repo)
        self.remote = remote
        self.location = remote.url
        self._passphrase = passphrase
        self._held = held  # else a follower mount's daemon holds the cache (and refreshes it)
        self._catalog_id = None if held else _file_id(repo.path / CATALOG_FILE)
        self._backend: Backend | None = None
        self._lease_checked = time.monotonic()  # taken just now (writable)
        self._closed = False

    def __repr__(self) -> str:
        return f"<vfs.Volume {self.location} cached in {self.store}{' writable' if self.writable else ''}>"

    def _remote_backend(self) -> Backend:
        """The volume's objects as the store's sync reads them (sealing, if encrypted); opened once."""
        if self._backend is None:
            self._backend = open_store_backend(self._repo)
        return self._backend

    def refresh(self) -> bool:
        """Bring the view to the volume's newest checkpoint (only the checkpoint objects after the one it
        shows are downloaded; data is fetched as it is read); whether it changed. A writer's view is the
        newest state already (it alone publishes): False.

        Raises:
            BackendError: the remote cannot be reached (the view keeps its state).
        """
        if self.writable:
            return False
        if not self._held:
            changed = bool(call(self.store, {"op": "refresh"})["changed"])
            self._settle()
            return changed
        return pull.pull_store(self._repo, self._remote_backend()) is not None

    def _settle(self) -> None:
        super()._settle()
        if self._held:
            return
        # The daemon installs each refresh by renaming a new catalog file into place; this process's
        # connection reads on from the file it opened until it reopens the store.
        found = _file_id(self.store / CATALOG_FILE)
        if found != self._catalog_id:
            self._repo.close()
            self._repo = open_repository(self.store, lock=False, passphrase=self._passphrase)
            self._catalog_id = found

    def _writer(self) -> Writer:
        self._keep_lease()
        return HeldStoreWriter(self._repo)

    def _keep_lease(self) -> None:
        """Check (and renew) the writer lease when it was last checked over a third of its term ago, so
        that a store that lost it learns so at its next change, not only when it publishes."""
        timing = Timing.from_env()
        if time.monotonic() - self._lease_checked < timing.ttl / 3:
            return
        try:
            WriterLease(self.store, self._remote_backend(), self._repo.store_id, timing=timing).check()
        except LeaseHeld:
            raise
        except BackendError as e:  # offline: changes are kept in the cache, and published by a later sync
            log.info("cannot renew the writer lease of %s now: %s", self.location, e)
            return
        self._lease_checked = time.monotonic()

    def sync(self, *, wait: bool = True, timeout: float = 300.0, progress: bool | None = None) -> dict[str, Any]:
        """Publish what the volume lacks (the writer's changes), in this process, within `timeout` seconds
        (`wait` is accepted for `Volume.sync`'s sake: this always waits); returns the sync status.

        Raises:
            NotWritable: the volume was opened read-only (`refresh()` brings the newest state).
            LeaseHeld: the store is no longer the writer (another store took the lease).
        """
        if not self.writable:
            raise NotWritable(f"{self.location} was opened read-only: there is nothing to publish (refresh() brings"
                              " the newest state; open it with writable=True to change it)")
        status = sync_store(self._repo, timeout=timeout, progress=progress)
        self._lease_checked = time.monotonic()
        return status

    def close(self) -> None:
        """Close the volume. A writer first publishes what the volume lacks (`sync()`), then releases the
        writer lease. If that publication fails, the changes stay in the cache and the lease is kept (it
        expires unless renewed): opening the volume writable from the same cache again publishes them;
        the error is raised once the volume is closed."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.writable:
                if backlog(self._repo, Manifest.load(self.store)).objects:
                    self.sync()
                lease = WriterLease(self.store, self._remote_backend(), self._repo.store_id)
                try:
                    lease.release()
                except BackendError as e:
                    log.warning("cannot release the writer lease of %s (it expires in %.0fs): %s", self.location,
                                lease.timing.ttl, e)
        finally:
            if self._backend is not None:
                self._backend.close()
            super().close()


def _file_id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


__all__ = ["RemoteVolume", "open_remote"]
