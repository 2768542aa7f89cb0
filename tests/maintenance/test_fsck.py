"""fsck finds each kind of damage done on purpose, and --repair mends what it can locally."""

from __future__ import annotations

import os
from pathlib import Path

from tests.maintenance.helpers import blob, clean, flip_byte, read, write
from vfs.maintenance import fsck
from vfs.repository import Repository
from vfs.store import ChunkLocation
from vfs.store.packs import ENTRY, pack_path


def _store(tmp_path: Path) -> tuple[Repository, list[ChunkLocation]]:
    repo = Repository.init(tmp_path / "s")
    for i in range(4):
        write(repo, f"f{i}", blob(i, 50_000))
    return repo, sorted(repo.catalog.chunk_locations(), key=lambda x: x.offset)


def _kinds(report: fsck.Report) -> list[str]:
    return [p.kind for p in report.problems if p.used]


def test_clean_store_has_no_problems(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    report = clean(repo)
    assert report.chunks == len(locs) == report.chunks_read
    repo.close()


def test_flipped_byte_in_chunk_data_found_only_by_read_data(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    loc = locs[1]
    flip_byte(pack_path(repo.path / "packs", loc.pack), loc.offset + ENTRY.size + 100)
    assert fsck.check(repo).problems == []  # headers are intact
    report = fsck.check(repo, read_data=True)
    assert _kinds(report) == ["corrupt"] and report.damage_remains
    assert report.problems[0].chunk == loc
    repo.close()


def test_flipped_byte_in_entry_header(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    flip_byte(pack_path(repo.path / "packs", locs[2].pack), locs[2].offset + 3)
    assert _kinds(fsck.check(repo)) == ["header-mismatch"]
    repo.close()


def test_truncated_pack(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    os.truncate(pack_path(repo.path / "packs", locs[-1].pack), locs[-1].offset + 10)
    assert _kinds(fsck.check(repo)) == ["truncated"]
    repo.close()


def test_deleted_pack_and_pack_header(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    path = pack_path(repo.path / "packs", locs[0].pack)
    flip_byte(path, 0)
    assert _kinds(fsck.check(repo)) == ["bad-pack-header"]
    path.unlink()
    assert set(_kinds(fsck.check(repo))) == {"missing-pack"}
    repo.close()


def test_catalog_damage(tmp_path: Path) -> None:
    repo, _ = _store(tmp_path)
    repo.catalog._db.execute("DELETE FROM chunks WHERE id = (SELECT id FROM chunks LIMIT 1)")
    report = fsck.check(repo)
    assert any(p.kind == "catalog" and "unknown chunk" in p.message for p in report.problems)
    assert report.damage_remains
    repo.close()


def test_subset_is_deterministic_and_covers_everything(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    counts = [fsck.check(repo, read_data=True, subset=(n, 3)).chunks_read for n in (1, 2, 3)]
    assert sum(counts) == len(locs)
    assert fsck.check(repo, read_data=True, subset=(2, 3)).chunks_read == counts[1]
    repo.close()


def test_repair_uses_an_intact_copy_in_another_pack(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    loc = locs[1]
    # An intact copy in a later pack (as a crashed repack or a forgotten write would leave one).
    stored = repo.chunks._reader.read_entry(loc)
    repo.chunks._writer.append(loc.chunk_id, loc.codec, stored, loc.plain_len)
    repo.chunks.sync()
    flip_byte(pack_path(repo.path / "packs", loc.pack), loc.offset + ENTRY.size + 7)
    report = fsck.check(repo, read_data=True)
    fsck.repair(repo, report)
    assert not report.damage_remains and report.problems[0].repaired
    clean(repo)
    assert read(repo, "f1") == blob(1, 50_000)
    repo.close()


def test_repair_without_a_copy_needs_the_remote(tmp_path: Path) -> None:
    repo, locs = _store(tmp_path)
    flip_byte(pack_path(repo.path / "packs", locs[0].pack), locs[0].offset + ENTRY.size + 7)
    flip_byte(pack_path(repo.path / "packs", locs[0].pack), 2)  # and the pack header
    report = fsck.check(repo, read_data=True)
    fsck.repair(repo, report)
    assert report.damage_remains
    by_kind = {p.kind: p for p in report.problems}
    assert by_kind["corrupt"].needs_remote and not by_kind["corrupt"].repaired
    assert by_kind["bad-pack-header"].repaired
    assert _kinds(fsck.check(repo, read_data=True)) == ["corrupt"]
    repo.close()
