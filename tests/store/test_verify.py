"""The one verifier of pack entries: vfs.store.verify, and the ChunkStore methods maintenance calls."""

from __future__ import annotations

import os
from pathlib import Path

from vfs.config import KiB, MiB, StoreConfig
from vfs.store import ChunkLocation, ChunkStore, codec
from vfs.store.verify import PackFile, check_entry, verify_pack_bytes

SMALL = StoreConfig(chunk_min=16 * KiB, chunk_avg=64 * KiB, chunk_max=256 * KiB, pack_target=MiB)


def _store(tmp_path: Path, pieces: list[bytes]) -> tuple[ChunkStore, list[ChunkLocation]]:
    store = ChunkStore(tmp_path, SMALL, threads=2)
    locs = [store.ingest_bytes(p, lambda cid: False).new[0] for p in pieces]
    store.seal()
    return store, locs


def test_an_intact_entry_has_no_problem_and_each_damage_has_its_kind(tmp_path: Path) -> None:
    store, (a, b) = _store(tmp_path, [os.urandom(5000), b"x" * 9000])
    try:
        assert store.verify_chunk(a) is None and store.verify_chunk(b) is None
        data = store.pack_file(a.pack).read_bytes()
        assert verify_pack_bytes(data, [a, b])
        wrong = ChunkLocation(a.chunk_id, a.pack, a.offset, a.codec, a.stored_len, a.plain_len + 1)
        found = store.verify_chunk(wrong)
        assert found is not None and found.kind == "header-mismatch"
        assert found.message.endswith("the entry header does not match the catalog")
        beyond = ChunkLocation(b.chunk_id, b.pack, len(data) - 10, b.codec, b.stored_len, b.plain_len)
        found = store.verify_chunk(beyond)
        assert found is not None and found.kind == "truncated" and f"the pack ends at {len(data)}" in found.message
        flipped = bytearray(data)
        flipped[a.offset + a.entry_size - 1] ^= 0xFF
        found = check_entry(a, len(flipped), lambda off, n: bytes(flipped[off : off + n]))
        assert found is not None and found.kind == "corrupt" and a.chunk_id.hex() in found.message
        assert check_entry(a, len(flipped), lambda off, n: bytes(flipped[off : off + n]), read_data=False) is None
        assert not verify_pack_bytes(bytes(flipped), [a, b]) and verify_pack_bytes(bytes(flipped), [b])
        with PackFile(store.pack_file(a.pack)) as pack:
            assert pack.has_header() and pack.verify(a, read_data=False) is None and pack.chunks_read == 0
            assert pack.verify(a) is None and (pack.chunks_read, pack.bytes_read) == (1, a.stored_len)
        store.forget_pack(a.pack)
        store.pack_file(a.pack).unlink()
        found = store.verify_chunk(a)
        assert found is not None and found.kind == "missing-pack"
    finally:
        store.close()


def test_scan_rewrite_delete_and_repair_header(tmp_path: Path) -> None:
    pieces = [os.urandom(3000 + i) for i in range(4)]
    store, locs = _store(tmp_path, pieces)
    try:
        pack = locs[0].pack
        assert all(loc.pack == pack for loc in locs)
        assert store.scan(pack) == locs
        assert store.local_packs()[0] == pack and store.pack_size(pack) == locs[-1].offset + locs[-1].entry_size
        assert store.unsealed_bytes() == 0  # the open pack holds no entry yet
        done = store.rewrite(pack, [locs[2], locs[0]])
        store.sync()
        assert [old for old, _ in done.moves] == [locs[0], locs[2]] and not done.damaged
        assert done.copied_bytes == locs[0].entry_size + locs[2].entry_size
        assert [store.read_chunk(new) for _, new in done.moves] == [pieces[0], pieces[2]]
        assert store.unsealed_bytes() == store.pack_size(store.open_pack)
        path = store.pack_file(pack)
        raw = bytearray(path.read_bytes())
        raw[0:4] = b"XXXX"
        path.write_bytes(raw)
        with store.open_pack_file(pack) as f:
            assert not f.has_header()
        store.repair_header(pack)
        with store.open_pack_file(pack) as f:
            assert f.has_header()
        generation = store.generation
        store.delete(pack)
        assert not path.exists() and store.pack_size(pack) is None and store.generation == generation + 1
        assert codec.chunk_id(pieces[1]) == locs[1].chunk_id
    finally:
        store.close()
