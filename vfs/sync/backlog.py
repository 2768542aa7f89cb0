"""What the remote still lacks, and the sync status `vfs status` shows (mounted or not).

The *backlog* is what a sync would upload now: sealed packs without a `remote_packs` row, the open
pack's data, and catalog changes the newest checkpoint lacks. *Eviction* (`--cache-size`) drops local
packs the published checkpoint names and partial packs, least recently read first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vfs.backend import Failure
from vfs.errors import StoreError
from vfs.repository import Repository
from vfs.sync import checkpoint
from vfs.sync.lease import LocalLease

log = logging.getLogger(__name__)

@dataclass
class Backlog:
    objects: int
    bytes: int
    catalog_changed: bool  # the catalog holds commits the newest checkpoint lacks


def backlog(repo: Repository, manifest: checkpoint.Manifest | None) -> Backlog:
    """What the remote still lacks: sealed packs without a row, the open pack's data, catalog changes."""
    remote = repo.catalog.remote_packs()
    objects = size = 0
    for pack, n in repo.chunks.sealed_packs():
        if pack not in remote:
            objects, size = objects + 1, size + n
    open_size = repo.chunks.unsealed_bytes()
    if open_size:
        objects, size = objects + 1, size + open_size
    changed = manifest is None or manifest.replaces is not None or manifest.head_commit != repo.catalog.head().no
    if changed:
        objects += 1
    return Backlog(objects, size, changed)


def status_of(
    repo: Repository, manifest: checkpoint.Manifest | None, *, failure: Failure | None = None,
    conflict: bool = False, cache_note: str | None = None, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The status `vfs status` shows (JSON-ready); `error*` describe the current failure, if any."""
    b = backlog(repo, manifest)
    return {
        "remote": repo.remote.url if repo.remote else None,
        "endpoint_url": repo.remote.endpoint_url if repo.remote else None,
        "backlog_objects": b.objects,
        "backlog_bytes": b.bytes,
        "catalog_changed": b.catalog_changed,
        "last_sync_ns": manifest.time_ns if manifest else None,
        "checkpoint": manifest.seq if manifest else None,
        "error": failure.message if failure else None,
        "error_since_ns": failure.since_ns if failure else None,  # requests (or rounds) fail since then
        "error_attempts": failure.attempts if failure else None,  # how many failed meanwhile
        "error_permanent": failure.permanent if failure else None,  # retrying will not fix it (no such bucket)
        "conflict": conflict,  # another store has written the remote: this store stopped syncing
        "cache": cache_note,
        "lease": lease_status(repo),  # whether this store is the volume's writer (and if not, why)
        **(extra or {}),
    }


def lease_status(repo: Repository) -> dict[str, Any]:
    """This store's part in the writer lease, as it last knew it (`vfs.sync.lease.LocalLease`)."""
    try:
        return LocalLease.load(repo.path).status()
    except StoreError as e:  # a damaged file must not break `vfs status`
        return {"writer": False, "epoch": None, "expires_ns": None, "lost": str(e)}


def evict(repo: Repository, cap: int, now: Callable[[], float] = time.monotonic) -> str | None:
    """Remove least recently read packs that the remote holds until local pack data is at most `cap` bytes.

    Local pack data is the whole pack files and the disk blocks of the partial packs (entries fetched
    one by one, `vfs.store.partial`); both kinds are evicted in one least-recently-read order. Whole
    packs read in the last few seconds are kept (a read may be using them); a partial pack is kept
    only while in use. Returns a note when the cap cannot be honoured (data not yet uploaded exceeds
    it), else None.
    """
    remote = repo.catalog.remote_packs()
    packs = repo.chunks.sealed_packs()
    partial = repo.chunks.partial_packs()
    total = sum(n for _, n in packs) + sum(n for n, _ in partial.values())
    open_file = repo.chunks.pack_file(repo.chunks.open_pack)
    total += open_file.stat().st_size if open_file.exists() else 0
    if total <= cap:
        return None
    used = repo.chunks.pack_last_use()
    recent = now() - 5.0
    candidates = sorted([(used.get(p, 0.0), False, p) for p, _ in packs if p in remote and used.get(p, 0.0) < recent]
                        + [(last, True, p) for p, (_, last) in partial.items()])
    for _, is_partial, pack in candidates:
        if total <= cap:
            break
        total -= repo.chunks.evict_partial(pack) if is_partial else repo.chunks.evict_pack(pack)
    if total > cap:
        return (f"cache size {cap} bytes cannot be honoured: {total} bytes of packs are local"
                " (not yet uploaded, or in use)")
    return None


def report_backlog(repo: Repository) -> None:
    """Log what the remote still lacks (at shutdown: it is kept on disk for the next mount)."""
    b = backlog(repo, checkpoint.Manifest.load(repo.path))
    if b.objects:
        log.info("not yet on the remote: %d object(s), %d bytes of packs%s; kept for the next mount or"
                 " 'vfs sync'", b.objects, b.bytes, " and catalog changes" if b.catalog_changed else "")
    else:
        log.info("the remote holds everything")
