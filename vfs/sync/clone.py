"""Clone: make a new store from a remote's newest checkpoint, with all packs or (lazy) none.

A lazy clone fetches each pack on the first read of a chunk in it (`vfs.sync.fetch`); `prefetch`
fetches the packs some versions need ahead of time.
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
from vfs.errors import StoreError
from vfs.fsutil import PRIVATE_DIR, private_dir
from vfs.repository import Repository
from vfs.sync import checkpoint, layout
from vfs.sync.fetch import remote_fetcher
from vfs.sync.transfer import download_pack
from vfs.types import PackNo

log = logging.getLogger(__name__)
Progress = Callable[[int, int, int, int], None]  # (bytes done, bytes in all, objects done, objects in all)


def clone(
    backend: Backend, remote: RemoteConfig, store: Path, *, lazy: bool = False, jobs: int = 4,
    progress: Progress = lambda *_: None,
) -> Repository:
    """Make a store at `store` (absent or an empty directory) from `backend`; returns it, open.

    Raises:
        StoreError: `store` is not empty.
        BackendNotFound: the remote holds no volume.
        CorruptChunk: an object is damaged (named by its key).
    """
    if store.exists() and (not store.is_dir() or any(store.iterdir())):
        raise StoreError(f"cannot clone into {store}: it exists and is not an empty directory")
    private_dir(store, parents=True)
    os.chmod(store, PRIVATE_DIR)  # an empty directory given by the caller may be open to others
    layout.unwrap_json(backend.get(layout.CONFIG_KEY), layout.CONFIG_KEY)  # a clear error if no volume
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
    repo = Repository.open(store, fetcher=remote_fetcher)  # a lazy clone reads its packs from the remote
    try:
        if not lazy:
            download_all(repo, backend, packs, jobs=jobs, progress=progress)
        return repo
    except BaseException:
        repo.close()
        raise


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
