"""Garbage collection: free the chunks and packs that no version uses, repack packs mostly garbage.

Deletion follows the write ordering in reverse, so a crash (kill -9, power loss) at any point loses no
kept data:

1. The used chunk ids are gathered from every version.
2. Chunk rows nobody uses are deleted in one durable catalog transaction (rechecking versions made
   since step 1). Their bytes are now garbage: nothing points to them.
3. A pack whose every entry is garbage is deleted (file, then its directory fsync'd).
4. A pack whose garbage exceeds `repack_threshold` of its bytes is repacked: its used entries are read
   (and verified against their ids: damaged bytes are never copied; fsck reports them), appended to
   the open pack and fsync'd; one durable transaction moves their rows; only then is the old pack
   deleted. A crash before the move leaves copies nobody points to (garbage for the next gc); a crash
   after it leaves an old pack nobody points to.

What gc must never touch: the open pack (the highest-numbered one when gc starts, which a writer
appends to or reopens), and entries appended but not yet committed. So it runs either on an unmounted
store (whose lock it holds) or inside the daemon with the committer paused (see the control server).
Packs absent locally (on the remote only) are left to the remote half of gc (`vfs.maintenance.remote`:
it deletes unused remote pack objects after the catalog checkpoint that stopped using them is uploaded).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vfs.errors import VfsError
from vfs.repository import Repository
from vfs.store import ChunkLocation, ChunkStore
from vfs.types import ChunkId

log = logging.getLogger(__name__)

REPACK_THRESHOLD = 0.5  # repack a pack once more than this share of its bytes is garbage


@dataclass
class GcResult:
    chunks_deleted: int = 0
    packs_deleted: list[int] = field(default_factory=list)
    packs_repacked: list[int] = field(default_factory=list)
    chunks_moved: int = 0
    bytes_freed: int = 0  # local pack bytes before minus after (a dry run: an estimate)
    damaged: list[str] = field(default_factory=list)  # entries not repacked because they failed verification

    def as_json(self) -> dict[str, Any]:
        return {"chunks_deleted": self.chunks_deleted, "packs_deleted": self.packs_deleted,
                "packs_repacked": self.packs_repacked, "chunks_moved": self.chunks_moved,
                "bytes_freed": self.bytes_freed, "damaged": self.damaged}


def collect(repo: Repository, *, repack_threshold: float = REPACK_THRESHOLD, dry_run: bool = False,
            step: Callable[[str], None] = lambda what: None) -> GcResult:
    """Free what no version uses; see the module's docstring. The caller holds off all writers.

    `step(name)` is called before each step that changes the store (a test kills gc there).
    """
    if not 0.0 <= repack_threshold <= 1.0:
        raise VfsError("repack_threshold must be between 0 and 1")
    catalog = repo.catalog
    result = GcResult()
    present = repo.chunks.local_packs()
    if not present:
        return result
    open_pack = present[-1]
    disk_before = _pack_bytes(repo.chunks)

    # 1. what versions use
    last_version = catalog.max_version_id()
    used: set[ChunkId] = set()
    for batch in catalog.iter_version_chunks():
        used.update(batch)
    rows = catalog.chunk_locations()
    unused = [loc for loc in rows if loc.chunk_id not in used]
    live = [loc for loc in rows if loc.chunk_id in used]

    # 2. rows nobody uses
    if unused and not dry_run:
        step("delete-rows")
        result.chunks_deleted = catalog.delete_chunks([loc.chunk_id for loc in unused],
                                                      versions_after=last_version)
    elif dry_run:
        result.chunks_deleted = len(unused)

    live_by_pack: dict[int, list[ChunkLocation]] = {}
    for loc in live:
        live_by_pack.setdefault(loc.pack, []).append(loc)

    for pack in present:
        if pack >= open_pack:
            continue
        size = repo.chunks.pack_size(pack)
        if size is None:
            continue
        entries = live_by_pack.get(pack, [])
        live_bytes = sum(loc.entry_size for loc in entries)
        if not entries:
            # 3. nothing uses the pack
            if not dry_run:
                step("delete-pack")
                repo.chunks.delete(pack)
            result.packs_deleted.append(pack)
            result.bytes_freed += size
        elif size > 0 and (size - live_bytes) / size > repack_threshold:
            # 4. mostly garbage
            if dry_run:
                result.packs_repacked.append(pack)
                result.bytes_freed += size - live_bytes
                continue
            moved, copied = _repack(repo, pack, entries, result, step)
            result.chunks_moved += moved
            if moved == len(entries):
                step("delete-repacked")
                repo.chunks.delete(pack)
                result.packs_repacked.append(pack)
                result.bytes_freed += size - copied
    if not dry_run:
        result.bytes_freed = disk_before - _pack_bytes(repo.chunks)  # measured: new pack headers count too
        log.info("gc: %d chunk rows deleted, %d packs deleted, %d repacked, %d bytes freed",
                 result.chunks_deleted, len(result.packs_deleted), len(result.packs_repacked), result.bytes_freed)
    return result


def _repack(repo: Repository, pack: int, entries: list[ChunkLocation], result: GcResult,
            step: Callable[[str], None]) -> tuple[int, int]:
    """Copy `entries` of `pack` into the open pack, durably, then move their rows; (moved, bytes copied)."""
    step("repack-copy")
    copied = repo.chunks.rewrite(pack, entries)  # verified: damage is never copied
    result.damaged += copied.damaged
    step("repack-sync")
    repo.chunks.sync()  # the copies are durable before any row points to them
    step("repack-move")
    moved = repo.catalog.move_chunks(copied.moves)
    return moved, copied.copied_bytes


def _pack_bytes(chunks: ChunkStore) -> int:
    return sum(chunks.pack_size(pack) or 0 for pack in chunks.local_packs())
