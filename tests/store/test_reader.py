"""Reads of a version's content: vfs.store.reader (one catalog trip per version, safe across gc)."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from vfs.catalog import Version
from vfs.config import KiB, MiB, StoreConfig
from vfs.errors import MissingChunk
from vfs.repository import Repository
from vfs.store import ChunkLocation, ContentReader
from vfs.types import ROOT_INO, ChunkId

SMALL = StoreConfig(chunk_min=16 * KiB, chunk_avg=64 * KiB, chunk_max=256 * KiB, pack_target=MiB)


def _repo_with_file(path: Path, data: bytes) -> tuple[Repository, Version]:
    repo = Repository.init(path, SMALL)
    ino = repo.catalog.create(ROOT_INO, b"f", stat.S_IFREG | 0o644, os.getuid(), os.getgid()).ino
    return repo, repo.commit_bytes(ino, data)


def test_locate_all_keeps_order_and_repeats_and_names_a_missing_chunk(tmp_path: Path) -> None:
    data = os.urandom(MiB)
    repo, v = _repo_with_file(tmp_path, data + data[: 300 * KiB])
    with repo:
        ids = [cid for cid, _ in v.chunks]
        wanted = [ids[2], ids[0], ids[2], *ids]
        assert repo.catalog.locate_all(wanted) == [repo.catalog.locate(c) for c in wanted]
        assert repo.catalog.locate_all([]) == []
        ghost = ChunkId(bytes(32))
        with pytest.raises(MissingChunk, match=ghost.hex()):
            repo.catalog.locate_all([ids[0], ghost])


def test_a_version_is_located_in_one_catalog_trip(tmp_path: Path) -> None:
    data = os.urandom(3 * MiB)
    repo, v = _repo_with_file(tmp_path, data)
    with repo:
        calls: list[int] = []

        def locate_all(ids: Sequence[ChunkId]) -> list[ChunkLocation]:
            calls.append(len(ids))
            return repo.catalog.locate_all(ids)

        reader = ContentReader(repo.chunks, locate_all)
        step = 128 * KiB
        got = b"".join(reader.read(v, off, step) or b"" for off in range(0, len(data), step))
        assert got == data
        assert b"".join(reader.iter_content(v)) == data
        assert calls == [len(v.chunks)]


def test_reads_follow_chunks_that_gc_moved_after_their_locations_were_kept(tmp_path: Path) -> None:
    data = os.urandom(2 * MiB)
    repo, v = _repo_with_file(tmp_path, data)
    with repo:
        repo.chunks.seal()
        reader = ContentReader(repo.chunks, repo.catalog.locate_all)
        assert reader.read(v, 0, 1000) == data[:1000]
        stale = reader._layout(v, resolve=True)
        assert stale is not None
        # what gc does to repack every pack of the version: copy, sync, move the rows, delete
        old_packs = sorted({loc.pack for loc in stale.locs})
        for pack in old_packs:
            copied = repo.chunks.rewrite(pack, [loc for loc in stale.locs if loc.pack == pack])
            repo.chunks.sync()
            repo.catalog.move_chunks(copied.moves)
            repo.chunks.delete(pack)
        assert all(not repo.chunks.pack_file(p).exists() for p in old_packs)
        assert reader.read(v, MiB, 1000) == data[MiB : MiB + 1000]
        # a read that took its locations just before the deletion is retried with fresh ones
        fresh = reader._layout
        handed = iter([stale])
        reader._layout = lambda content, resolve: next(handed, None) or fresh(content, resolve=resolve)  # type: ignore[method-assign]
        reader._decoded.clear()
        assert reader.read(v, 0, len(data)) == data
        reader._layout = fresh  # type: ignore[method-assign]
        reader._decoded.clear()
        assert b"".join(reader.iter_content(v)) == data


def test_a_missing_pack_is_still_reported_when_no_pack_was_deleted(tmp_path: Path) -> None:
    data = os.urandom(2 * MiB)
    repo, v = _repo_with_file(tmp_path, data)
    with repo:
        repo.chunks.seal()
        reader = ContentReader(repo.chunks, repo.catalog.locate_all)
        layout = reader._layout(v, resolve=True)
        assert layout is not None
        repo.chunks.forget_pack(layout.locs[0].pack)
        repo.chunks.pack_file(layout.locs[0].pack).unlink()
        with pytest.raises(MissingChunk):
            reader.read(v, 0, 1000)
