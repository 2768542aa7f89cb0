"""Pull: bring a store that reads a remote volume up to the volume's newest checkpoint.

Such a store is a follower's cache (`vfs mount --follow`) or a clone that has written nothing of its own
(`vfs pull`). It keeps the database of the checkpoint it last installed as `sync/pulled.db` (the
checkpoint's bytes exactly). A newer pointer whose chain extends the one the manifest records costs only
the objects after it (the deltas: bytes in proportion to the change); another chain (the writer made a
new base) is fetched whole. The result is checked against the pointer's BLAKE3 before it is used.

Which pointer is newer (fencing, docs/design.md "Writer lease"): one of a higher epoch, or of the same
epoch and a higher seq. A pointer of a lower epoch was put by a writer that had lost the lease: ignored.

Installing, in this order (docs/design.md "Pull"): `sync/pulled.db.next` and `catalog.db.next` are
written and made durable; `catalog.db.next` replaces the catalog (the commit point: the new catalog
names its checkpoint in `meta.pulled`); then `pulled.db.next` replaces `pulled.db` and the manifest is
saved. `finish_install` completes an install a kill interrupted, from what the catalog names.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfs.backend import Backend
from vfs.catalog import Catalog, copies
from vfs.catalog.catalog import CATALOG_FILE
from vfs.errors import BackendNotFound, CorruptChunk, RemoteConflict, StoreError
from vfs.fsutil import fsync_path, private_dir, replace_file
from vfs.repository import Repository
from vfs.store import codec
from vfs.sync import checkpoint, layout
from vfs.sync.checkpoint import PULLED, STATE_DIR, Manifest

log = logging.getLogger(__name__)

NEXT = ".next"  # suffix of the files an install puts in place
PULLED_META = "pulled"  # catalog meta: JSON of the head of the checkpoint the catalog was installed from
LOCAL_META = ("remote", "cache_size")  # this machine's settings, kept across installs (never in a checkpoint)


@dataclass
class Prepared:
    """A newer checkpoint, downloaded and verified, ready to install."""

    pointer: dict[str, Any]
    manifest: Manifest
    fetched: int  # bytes of checkpoint objects downloaded
    catalog: Path  # catalog.db.next
    pulled: Path  # sync/pulled.db.next


def is_newer(pointer: dict[str, Any], manifest: Manifest | None) -> bool:
    """Whether `pointer` names a later state of the volume than `manifest`'s (see the module docstring)."""
    if manifest is None:
        return True
    seq, epoch = pointer.get("seq"), checkpoint.pointer_epoch(pointer)
    if not isinstance(seq, int):
        raise CorruptChunk(f"{layout.LATEST_KEY} has no checkpoint number")
    return epoch > manifest.epoch or (epoch == manifest.epoch and seq > manifest.seq)


def has_unpublished(catalog: Catalog, manifest: Manifest | None) -> bool:
    """Whether the catalog holds commits the remote lacks (or the store never synced nor pulled)."""
    return manifest is None or catalog.head().no != manifest.head_commit


def check_nothing_unpublished(store: Path, catalog: Catalog, manifest: Manifest | None) -> None:
    """Refuse to replace a catalog that holds commits the remote lacks.

    Raises:
        StoreError: the store has written since it last synced or pulled (or never did either).
    """
    if manifest is None:
        raise StoreError(f"store {store} has never synced with its remote: there is nothing to pull into;"
                         " clone the volume instead")
    head = catalog.head().no
    if head != manifest.head_commit:
        raise StoreError(f"store {store} has changes its remote lacks (commit {head}, the remote holds"
                         f" {manifest.head_commit}): pulling would discard them; sync them as the writer"
                         " ('vfs lease take'), or clone the volume afresh")


def prepare(backend: Backend, store: Path, catalog: Catalog, manifest: Manifest | None) -> Prepared | None:
    """Download the remote's newest checkpoint if it is newer than `manifest`; None if it is not.

    `backend` reads the remote as the store does (sealing for an encrypted volume). Slow (network,
    decompression, hashing): call from a thread. Writes only the `.next` files.

    Raises:
        BackendNotFound: the remote holds no volume.
        RemoteConflict: the remote holds another volume.
        CorruptChunk: an object is damaged (the store is left as it was).
    """
    pointer = checkpoint.read_pointer(backend)
    if pointer is None:
        raise BackendNotFound(f"{backend.url} holds no volume (no {layout.LATEST_KEY})")
    volume = catalog.meta("store_id")
    if pointer.get("volume") not in (None, volume):
        raise RemoteConflict(f"{backend.url} now holds another volume ({pointer.get('volume')}), not {volume}")
    if not is_newer(pointer, manifest):
        if manifest is not None and checkpoint.pointer_epoch(pointer) < manifest.epoch:
            log.info("ignored %s of epoch %d: the volume is at epoch %d (a fenced writer's)",
                     layout.LATEST_KEY, checkpoint.pointer_epoch(pointer), manifest.epoch)
        return None
    start, applied = _base(store, manifest, pointer)
    try:
        db, fetched = checkpoint.rebuild(backend, pointer, start, applied)
    except CorruptChunk:
        if start is None:
            raise
        log.info("the incremental pull did not match %s; fetching its whole chain", layout.LATEST_KEY)
        db, fetched = checkpoint.rebuild(backend, pointer)
    state = store / STATE_DIR
    private_dir(state)
    pulled = state / (PULLED + NEXT)
    replace_file(pulled, db)
    new_manifest = checkpoint.manifest_of(pointer, db)
    next_catalog = store / (CATALOG_FILE + NEXT)
    replace_file(next_catalog, db)
    new_manifest.head_commit = _localize(next_catalog, catalog, new_manifest)
    new_manifest.remote_packs = len(copies.remote_pack_sizes(next_catalog))  # as a clone's: nothing to upload
    return Prepared(pointer, new_manifest, fetched, next_catalog, pulled)


def _base(store: Path, manifest: Manifest | None, pointer: dict[str, Any]) -> tuple[bytearray | None, int]:
    """The database to apply the pointer's newer objects to, and how many of its objects it holds; (None, 0)
    when the whole chain must be fetched (a new base, or no `pulled.db`)."""
    if manifest is None or not manifest.chain or not manifest.db_hash:
        return None, 0
    chain = pointer.get("chain")
    if not isinstance(chain, list) or chain[: len(manifest.chain)] != manifest.chain:
        return None, 0
    try:
        # Not checked against the manifest's hash here: a `pulled.db` that is not the one it names (none
        # should be: see `finish_install`) gives a result that fails the pointer's hash, and `prepare`
        # then fetches the whole chain.
        return bytearray((store / STATE_DIR / PULLED).read_bytes()), len(manifest.chain)
    except FileNotFoundError:
        return None, 0


def _localize(path: Path, catalog: Catalog, manifest: Manifest) -> int:
    """Give the downloaded catalog at `path` this store's local settings and the name of its checkpoint
    (`meta.pulled`), durably; returns its newest commit number."""
    values = {k: v for k in LOCAL_META if (v := catalog.meta_or_none(k)) is not None}
    values[PULLED_META] = json.dumps({**manifest.head(), "epoch": manifest.epoch}, sort_keys=True)
    return copies.set_local_meta(path, values)


def install(store: Path, prepared: Prepared, replace_catalog: Callable[[Path], None]) -> None:
    """Make `prepared` the store's state: `replace_catalog(path)` moves the new catalog file into place
    (`Catalog.replace_file` of the open catalog, which a mount reads on), then `pulled.db` and the manifest."""
    replace_catalog(prepared.catalog)
    os.replace(prepared.pulled, store / STATE_DIR / PULLED)
    fsync_path(store / STATE_DIR)
    prepared.manifest.save(store)


def finish_install(store: Path, catalog: Catalog, manifest: Manifest | None) -> Manifest | None:
    """Complete an install that a kill interrupted after its commit point; returns the manifest to use.

    The catalog names the checkpoint it was installed from (`meta.pulled`); a manifest that names
    another is rebuilt from it (with the hashes of `pulled.db` when that is the named database, else
    none: the next pull then fetches a whole chain).
    """
    found = catalog.meta_or_none(PULLED_META)
    if found is None:
        return manifest
    head = json.loads(found)
    if not is_newer(head, manifest):
        return manifest  # installed completely, or the store has published since (a promoted follower)
    state = store / STATE_DIR
    db, pointer = b"", head  # without the named database the next pull fetches a whole chain
    for name in (PULLED + NEXT, PULLED):
        try:
            found_db = (state / name).read_bytes()
        except FileNotFoundError:
            continue
        if codec.chunk_id(found_db).hex() == head["db_hash"]:
            if name != PULLED:
                os.replace(state / name, state / PULLED)
            db = found_db
            break
    repaired = checkpoint.manifest_of(pointer, db)
    repaired.head_commit = catalog.head().no
    repaired.save(store)
    log.info("completed the install of checkpoint %s that an earlier process left", head["seq"])
    return repaired


def current_manifest(repo: Repository) -> Manifest | None:
    """The store's manifest, after completing an install a kill interrupted (see `finish_install`)."""
    return finish_install(repo.path, repo.catalog, Manifest.load(repo.path))


def apply(repo: Repository, prepared: Prepared) -> int:
    """Install `prepared` into the open `repo` (mounted or not); returns the head commit it had before.

    Slow-ish (a file replaced, fsyncs): call from a thread. The chunk locations resolved from the old
    catalog are dropped, and so are local pack files (whole or partial) whose number now names another
    remote object.
    """
    catalog = repo.catalog
    old_head = catalog.head().no
    before = catalog.remote_packs()
    install(repo.path, prepared, catalog.replace_file)
    repo.reader.forget_layouts()
    after = catalog.remote_packs()
    # A local pack file of a number that now names another remote object is not that object: one the
    # writer's gc removed and a new pack reused the number of, or this store's own open pack, which
    # holds nothing committed (a store with unpublished commits is never pulled into).
    # (A partial pack in use as this runs stays; its stale entries fail their checks and are fetched again.)
    for pack in {*repo.chunks.local_packs(), *repo.chunks.partial_packs()}:
        if pack in after and before.get(pack) != after[pack]:
            repo.chunks.delete(pack)
    return old_head


def pull_store(repo: Repository, backend: Backend) -> Prepared | None:
    """`vfs pull`: bring the unmounted store `repo` (its lock held) up to its remote's newest checkpoint;
    what was installed, None if it was up to date already. Packs stay where they are: an eager clone's
    caller downloads the new ones, a lazy one fetches them on first read.

    Raises:
        StoreError: the store has changes its remote lacks (they would be lost), or never synced.
    """
    manifest = current_manifest(repo)
    check_nothing_unpublished(repo.path, repo.catalog, manifest)
    prepared = prepare(backend, repo.path, repo.catalog, manifest)
    if prepared is not None:
        apply(repo, prepared)
    return prepared
