"""Clone: make a new store from a remote's newest checkpoint, with all packs or (lazy) none.

A lazy clone fetches the entries a read needs when it is made, with ranged reads (`vfs.sync.fetch`,
`vfs.store.partial`); `prefetch` fetches whole the packs some versions need, ahead of time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vfs.backend import Backend
from vfs.catalog import Catalog, Version
from vfs.catalog.catalog import CATALOG_FILE
from vfs.config import RemoteConfig
from vfs.errors import CorruptChunk, KeyRequired, StoreError
from vfs.fsutil import PRIVATE_DIR, private_dir
from vfs.repository import PassphraseSource, Repository
from vfs.store.keyring import no_core_dumps, save_key_object
from vfs.store.keys import KeyObject, VolumeKeys, open_with_any
from vfs.sync import checkpoint, layout
from vfs.sync.fetch import remote_fetcher
from vfs.sync.sealed import remote_key_objects, sealing
from vfs.sync.transfer import download_pack
from vfs.types import PackNo

log = logging.getLogger(__name__)
Progress = Callable[[int, int, int, int], None]  # (bytes done, bytes in all, objects done, objects in all)


def clone(
    backend: Backend, remote: RemoteConfig, store: Path, *, lazy: bool = False, jobs: int = 4,
    progress: Progress = lambda *_: None, passphrase: PassphraseSource | None = None,
) -> Repository:
    """Make a store at `store` (absent or an empty directory) from `backend`; returns it, open.

    An encrypted volume is opened with `passphrase()` (its key objects are read from the bucket and
    kept in the new store) before anything else is written.

    Raises:
        StoreError: `store` is not empty.
        BackendNotFound: the remote holds no volume.
        CorruptChunk: an object is damaged (named by its key).
        KeyRequired, WrongPassphrase: an encrypted volume and no passphrase, or one that opens no key.
    """
    if store.exists() and (not store.is_dir() or any(store.iterdir())):
        raise StoreError(f"cannot clone into {store}: it exists and is not an empty directory")
    config = layout.unwrap_json(backend.get(layout.CONFIG_KEY), layout.CONFIG_KEY)  # a clear error if no volume
    unlocked = _unlock(backend, config, passphrase)
    private_dir(store, parents=True)
    os.chmod(store, PRIVATE_DIR)  # an empty directory given by the caller may be open to others
    keys = unlocked[0] if unlocked is not None else None
    if unlocked is not None:
        for key_object in unlocked[1]:
            save_key_object(store, key_object)
        backend = sealing(backend, unlocked[0])
    _pointer, manifest = checkpoint.restore(backend, store)
    catalog = Catalog.open(store / CATALOG_FILE)
    try:
        catalog.set_meta("remote", remote.to_json())
        packs = catalog.remote_packs()
        # What the remote's checkpoint holds: the clone starts with nothing to upload.
        manifest.head_commit, manifest.remote_packs = catalog.head().no, len(packs)
    finally:
        catalog.close()
    manifest.save(store)
    # A lazy clone reads its packs from the remote.
    repo = Repository.open(store, fetcher=remote_fetcher, keys=keys)
    try:
        if not lazy:
            download_all(repo, backend, packs, jobs=jobs, progress=progress)
        return repo
    except BaseException:
        repo.close()
        raise


def _unlock(backend: Backend, config: dict[str, object], passphrase: PassphraseSource | None,
            ) -> tuple[VolumeKeys, list[KeyObject]] | None:
    """The keys of the volume `config` describes and its key objects, None if it is not encrypted."""
    store_config = config.get("store_config")
    encryption = store_config.get("encryption") if isinstance(store_config, dict) else None
    if encryption is None:
        return None
    if passphrase is None:
        raise KeyRequired(f"{backend.url} holds an encrypted volume: give its passphrase")
    found = remote_key_objects(backend)
    if not found:
        raise StoreError(f"{backend.url} holds an encrypted volume but no key object (keys/): sync it from a"
                         " store that has its keys")
    no_core_dumps()
    keys, _used = open_with_any(found, passphrase())
    if not isinstance(encryption, dict) or keys.key_id != encryption.get("key_id"):
        raise CorruptChunk(f"the key objects of {backend.url} open another volume's key than its config names")
    return keys, found


def download_all(
    repo: Repository, backend: Backend, packs: dict[PackNo, tuple[str, int]], *, jobs: int = 4,
    progress: Progress = lambda *_: None,
) -> int:
    """Fetch every pack of `packs` the store lacks locally; returns the bytes fetched."""
    todo = {p: v for p, v in packs.items() if not repo.chunks.pack_file(p).exists()}
    total = sum(n for _, n in todo.values())
    done = 0
    progress(0, total, 0, len(todo))
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fetch") as pool:
        futures = [pool.submit(download_pack, backend, key, size, repo.chunks.pack_file(p))
                   for p, (key, size) in sorted(todo.items())]
        for n, f in enumerate(futures, 1):
            done += f.result()
            progress(done, total, n, len(todo))
    return done


def prefetch(
    repo: Repository, backend: Backend, versions: Iterable[Version], *, jobs: int = 4,
    progress: Progress = lambda *_: None,
) -> int:
    """Fetch the packs holding the chunks of `versions` that are missing locally; the bytes fetched."""
    wanted: set[PackNo] = set()
    for v in versions:
        for cid, _ in v.chunks:
            wanted.add(repo.catalog.locate(cid).pack)
    packs = {}
    for p in wanted:
        row = repo.catalog.remote_pack(p)
        if row is not None:
            packs[p] = row
    return download_all(repo, backend, packs, jobs=jobs, progress=progress)
