"""The composition module: builds the objects of a store and of a mount, and wires them together.

The CLI (and the Python API to come) start here, and nothing below imports it (an import-linter
contract in pyproject.toml says so). Collaborators are passed to constructors: the repository gets
the factory of its pack fetcher (`vfs.sync.fetch.remote_fetcher`), so that a store with a remote reads
the packs it lacks from there, while neither module imports the other.

Opening a store is here; the mount's wiring is in `vfs.compose.mount`, imported only by the daemon
(it brings trio, pyfuse3 and the control server: a fifth of a second that `vfs log` need not pay).
"""

from __future__ import annotations

import logging
from pathlib import Path

from vfs.config import RemoteConfig, StoreConfig
from vfs.repository import PassphraseSource, Repository
from vfs.store.keys import KdfParams, VolumeKeys
from vfs.sync.fetch import remote_fetcher

log = logging.getLogger(__name__)


def open_repository(path: Path | str, *, lock: bool = True, threads: int | None = None,
                    passphrase: PassphraseSource | None = None, keys: VolumeKeys | None = None) -> Repository:
    """Open an existing store (see Repository.open); one with a remote fetches the packs it lacks, an
    encrypted one is unlocked with `passphrase()` when given, or given the `keys` unlocked before."""
    return Repository.open(path, lock=lock, threads=threads, fetcher=remote_fetcher, passphrase=passphrase,
                           keys=keys)


def init_repository(path: Path | str, config: StoreConfig | None = None, *, passphrase: bytes | None = None,
                    kdf: KdfParams | None = None) -> Repository:
    """Create a new, empty store at `path` and open it (a new store has no remote yet); encrypted when
    given a passphrase."""
    return Repository.init(path, config, passphrase=passphrase, kdf=kdf)


def open_follower_store(
    remote: RemoteConfig, cache_dir: Path, *, passphrase: PassphraseSource | None = None,
    cache_size: int | None = None, writer: bool = False,
) -> Repository:
    """The store of a read-only view of `remote` (a follower mount, the Python API's `s3://` view): a
    lazy clone of the volume in `cache_dir`, made on first use, then brought up to the volume's newest
    checkpoint. Returns it open (its lock held).

    A remote that cannot be reached leaves an existing cache at its last state, with a warning: a
    follower keeps serving what it has and catches up later.

    `writer`: the store is to become the volume's writer (the Python API's writable `s3://` volume, which
    takes the lease next). A cache with changes of its own, which a writer left unpublished, is then
    opened as it is: pulling would discard them, and the lease's head check decides whether they can
    still be published.

    Raises:
        UsageError: `cache_dir` holds a store of another remote.
        StoreError: it holds changes of its own (a store that was written: not a follower's cache), and
            not `writer`.
        BackendError: a new cache, and the remote cannot be reached or holds no volume.
        KeyRequired, WrongPassphrase: an encrypted volume.
    """
    from vfs.errors import BackendUnavailable, UsageError
    from vfs.sync.clone import clone
    from vfs.sync.pull import current_manifest, has_unpublished, pull_store
    from vfs.sync.remote import check_reachable, open_remote_backend, open_store_backend

    if not cache_dir.exists() or (cache_dir.is_dir() and not any(cache_dir.iterdir())):
        check_reachable(remote, volume=True)
        with open_remote_backend(remote) as backend:
            repo = clone(backend, remote, cache_dir, lazy=True, passphrase=passphrase)
    else:
        with open_repository(cache_dir) as repo:  # its settings only: no passphrase asked yet
            if repo.remote is None or repo.remote.url != remote.url:
                raise UsageError(f"{cache_dir} holds a store of {repo.remote.url if repo.remote else 'no remote'},"
                                 f" not of {remote.url}: give another cache directory")
            if repo.remote != remote:  # the endpoint or region given now is the one to use
                repo.catalog.set_meta("remote", remote.to_json())
        repo = open_repository(cache_dir, passphrase=passphrase)
        try:
            if writer and has_unpublished(repo.catalog, current_manifest(repo)):
                log.info("%s holds changes %s lacks: not pulled (the writer publishes them)", cache_dir, remote.url)
            else:
                try:
                    with open_store_backend(repo) as backend:
                        pull_store(repo, backend)
                except BackendUnavailable as e:
                    log.warning("%s cannot be reached (%s): showing the state cached in %s", remote.url, e,
                                cache_dir)
        except BaseException:
            repo.close()
            raise
    if cache_size is not None:
        repo.catalog.set_meta("cache_size", str(cache_size))
    return repo
