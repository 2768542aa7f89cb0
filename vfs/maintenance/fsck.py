"""Verification: is the catalog consistent, and is every chunk it points to where it says, intact?

`check` only reads, so it may run next to a mounted store (the store opened with lock=False): the
catalog's own consistency (`Catalog.check`), every chunk row's pack present with a pack header, the
entry at the row's offset complete and with a header that matches the row, and, with `read_data`,
every chunk (or a deterministic subset, chosen by chunk id) read back and checked against its BLAKE3
id. A chunk row no version uses is garbage: its damage is reported but does not count as damage that
remains (gc or `--repair` drops it).

`repair` needs the store to itself (unmounted: it writes the catalog). What it can mend locally: a
damaged or missing chunk whose intact copy another local pack holds (an earlier write the catalog
forgot, or a repack copy) gets its row pointed there; a damaged unused row is deleted. The rest needs
the remote (re-fetching the chunk): such problems are marked `needs_remote` for the remote half
(`vfs.maintenance.remote`, which also checks the bucket itself).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vfs.errors import UsageError, VfsError
from vfs.repository import Repository
from vfs.store import ChunkLocation
from vfs.types import ChunkId

log = logging.getLogger(__name__)


@dataclass
class Problem:
    kind: str  # catalog, missing-pack, bad-pack-header, truncated, header-mismatch, corrupt
    message: str
    chunk: ChunkLocation | None = None
    used: bool = True  # some version uses the chunk (False: garbage, harmless)
    repaired: bool = False
    needs_remote: bool = False
    pack: int | None = None  # the pack a bad-pack-header or remote problem is about
    key: str | None = None  # the remote object a remote problem is about

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message,
                "chunk": None if self.chunk is None else self.chunk.chunk_id.hex(),
                "pack": self.chunk.pack if self.chunk is not None else self.pack, "key": self.key,
                "used": self.used, "repaired": self.repaired, "needs_remote": self.needs_remote}


@dataclass
class Report:
    packs: int = 0  # local pack files
    chunks: int = 0  # chunk rows checked
    chunks_read: int = 0  # chunks read back and re-hashed
    bytes_read: int = 0
    problems: list[Problem] = field(default_factory=list)
    used_packs: dict[int, bool] = field(default_factory=dict)  # pack -> whether a version uses a chunk in it
    remote: dict[str, Any] | None = None  # what the remote check looked at (vfs.maintenance.remote)

    @property
    def damage_remains(self) -> bool:
        return any(p.used and not p.repaired for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {"ok": not self.damage_remains, "packs": self.packs, "chunks": self.chunks,
                "chunks_read": self.chunks_read, "bytes_read": self.bytes_read,
                "problems": [p.as_json() for p in self.problems],
                "damaged": sum(1 for p in self.problems if p.used and not p.repaired),
                "repaired": sum(1 for p in self.problems if p.repaired),
                "needs_remote": sum(1 for p in self.problems if p.needs_remote and not p.repaired),
                "remote": self.remote}


def parse_subset(text: str) -> tuple[int, int]:
    """`n/m` (the n-th of m slices, 1-based) from `--read-data-subset`."""
    try:
        n, m = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--read-data-subset {text!r} is not like 1/10") from None
    if not 1 <= n <= m:
        raise UsageError(f"--read-data-subset {text!r}: need 1 <= n <= m")
    return n, m


def in_subset(chunk_id: ChunkId, subset: tuple[int, int] | None) -> bool:
    if subset is None:
        return True
    n, m = subset
    return int.from_bytes(chunk_id[:8], "big") % m == n - 1


def check(repo: Repository, *, read_data: bool = False, subset: tuple[int, int] | None = None,
          progress: Callable[[int, int], None] = lambda done, total: None,
          remote_only: Callable[[int], bool] = lambda pack: False) -> Report:
    """Check the store; nothing is changed. See the module's docstring.

    `subset` (n, m) reads only the chunks of slice n of m (with `read_data`). `progress(done, total)`
    is called as chunks are checked (in stored bytes). `remote_only(pack)`: whether a pack absent locally is expected
    to be (evicted after upload, or a lazy clone): it is then not reported missing.
    """
    report = Report()
    catalog = repo.catalog
    report.problems += [Problem("catalog", msg) for msg in catalog.check()]
    used: set[ChunkId] = set()
    for batch in catalog.iter_version_chunks():
        used.update(batch)
    by_pack: dict[int, list[ChunkLocation]] = {}
    for loc in catalog.chunk_locations():
        by_pack.setdefault(loc.pack, []).append(loc)
    report.packs = len(repo.chunks.local_packs())
    total = sum(loc.stored_len for v in by_pack.values() for loc in v)
    done = 0  # stored bytes of the chunks checked so far
    for pack in sorted(by_pack):
        locs = sorted(by_pack[pack], key=lambda x: x.offset)
        report.used_packs[pack] = any(loc.chunk_id in used for loc in locs)
        report.chunks += len(locs)
        path = repo.chunks.pack_file(pack)
        try:
            pack_file = repo.chunks.open_pack_file(pack)
        except FileNotFoundError:
            if not remote_only(pack):
                for loc in locs:
                    report.problems.append(Problem("missing-pack", f"chunk {loc.chunk_id.hex()}: pack {pack} is"
                                                   f" missing ({path})", loc, loc.chunk_id in used))
            done += sum(loc.stored_len for loc in locs)
            progress(done, total)
            continue
        with pack_file:
            if not pack_file.has_header():
                report.problems.append(Problem("bad-pack-header", f"pack {pack} ({path}) has no pack header",
                                               None, any(loc.chunk_id in used for loc in locs), pack=pack))
            for loc in locs:
                found = pack_file.verify(loc, read_data=read_data and in_subset(loc.chunk_id, subset))
                if found is not None:
                    report.problems.append(Problem(found.kind, found.message, loc, loc.chunk_id in used))
                done += loc.stored_len
                progress(done, total)
            report.chunks_read += pack_file.chunks_read
            report.bytes_read += pack_file.bytes_read
    progress(done, total)
    return report


def repair(repo: Repository, report: Report) -> None:
    """Mend locally what `report` found and can be mended without a remote; marks problems repaired.

    The caller holds the store's lock (the store is not mounted). Problems that remain and concern a
    chunk some version uses are marked `needs_remote`.
    """
    catalog = repo.catalog
    chunk_problems = [p for p in report.problems if p.chunk is not None]
    garbage = [p for p in chunk_problems if not p.used]
    if garbage:
        catalog.delete_chunks([p.chunk.chunk_id for p in garbage if p.chunk is not None],
                              versions_after=catalog.max_version_id())
        for p in garbage:
            p.repaired = True
            log.info("fsck: dropped the row of unused damaged chunk %s", p.message)
    wanted = {p.chunk.chunk_id: p for p in chunk_problems if p.used and p.chunk is not None}
    if wanted:
        moves = []
        for loc in _find_copies(repo, set(wanted)):
            old = wanted.pop(loc.chunk_id).chunk
            assert old is not None
            moves.append((old, loc))
        if moves:
            catalog.move_chunks(moves)
            for old, new in moves:
                for p in chunk_problems:
                    if p.chunk == old:
                        p.repaired = True
                log.info("fsck: chunk %s now read from pack %d (an intact copy)", old.chunk_id.hex(), new.pack)
    for p in report.problems:
        if p.used and not p.repaired and p.chunk is not None:
            p.needs_remote = True
    for p in report.problems:
        if p.kind == "bad-pack-header" and p.pack is not None:
            repo.chunks.repair_header(p.pack)
            p.repaired = True
            log.info("fsck: rewrote the header of pack %d", p.pack)


def _find_copies(repo: Repository, ids: set[ChunkId]) -> list[ChunkLocation]:
    """Intact entries of chunks `ids` anywhere in the local packs (one per chunk)."""
    found: dict[ChunkId, ChunkLocation] = {}
    for pack in repo.chunks.local_packs():
        try:
            entries = repo.chunks.scan(pack)
        except (VfsError, OSError):
            continue
        candidates = [e for e in entries if e.chunk_id in ids and e.chunk_id not in found]
        if not candidates:
            continue
        with repo.chunks.open_pack_file(pack) as pack_file:
            for e in candidates:
                if pack_file.verify(e) is None:
                    found[e.chunk_id] = e
    return list(found.values())
