"""Ingest and verified reads: vfs.store.chunkstore (and the chunker it drives)."""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import blake3
import pytest

from vfs.config import KiB, MiB, StoreConfig
from vfs.errors import CorruptChunk, MissingChunk, NoSpace
from vfs.store import ChunkLocation, ChunkStore, Ingested, chunkstore, codec, packs
from vfs.store.chunking import Chunker
from vfs.store.packs import ENTRY, list_packs, pack_path, scan_pack
from vfs.types import ChunkId

SMALL = StoreConfig(chunk_min=4 * KiB, chunk_avg=16 * KiB, chunk_max=64 * KiB, pack_target=256 * KiB)


class Known:
    """Stands in for the catalog: which chunks are stored, and where."""

    def __init__(self) -> None:
        self.locs: dict[ChunkId, ChunkLocation] = {}

    def __call__(self, cid: ChunkId) -> bool:
        return cid in self.locs

    def add(self, ingested: Ingested) -> Ingested:
        for loc in ingested.new:
            self.locs.setdefault(loc.chunk_id, loc)
        return ingested

    def read(self, store: ChunkStore, ingested: Ingested) -> bytes:
        return b"".join(store.read_chunks([self.locs[cid] for cid, _ in ingested.chunks]))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChunkStore]:
    s = ChunkStore(tmp_path / "packs", SMALL, threads=2)
    yield s
    s.close()


def _text(n: int, seed: int = 0) -> bytes:
    rnd = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta", b"theta", b"\n"]
    return b" ".join(rnd.choices(words, k=n // 5))[:n]


def test_small_file_is_one_chunk_named_by_its_blake3(store: ChunkStore) -> None:
    data = os.urandom(3000)
    got = store.ingest_bytes(data, Known())
    assert got.size == 3000
    assert got.chunks == [(blake3.blake3(data).digest(), 3000)]
    assert got.content_hash == blake3.blake3(data).digest()
    assert len(got.new) == 1 and got.new[0].plain_len == 3000


def test_empty_content(store: ChunkStore, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    for got in (store.ingest_bytes(b"", Known()), store.ingest(tmp_path / "empty", Known())):
        assert (got.size, got.chunks, got.new) == (0, [], [])
        assert got.content_hash == blake3.blake3(b"").digest()


def test_compressible_chunks_are_zstd_and_random_ones_raw(store: ChunkStore) -> None:
    known = Known()
    text = known.add(store.ingest_bytes(_text(3000), known))
    rand = known.add(store.ingest_bytes(os.urandom(3000), known))
    assert text.new[0].codec == codec.ZSTD and text.new[0].stored_len < 1500
    assert rand.new[0].codec == codec.RAW and rand.new[0].stored_len == 3000
    assert text.stored_bytes == text.new[0].stored_len


def test_large_file_round_trip_through_a_staging_file(store: ChunkStore, tmp_path: Path) -> None:
    data = b"".join(os.urandom(50_000) + _text(50_000, i) for i in range(20))
    f = tmp_path / "staging"
    f.write_bytes(data)
    known = Known()
    got = known.add(store.ingest(f, known))
    assert got.size == len(data)
    assert got.content_hash == blake3.blake3(data).digest()
    assert sum(n for _, n in got.chunks) == len(data)
    assert len(got.chunks) > 20
    for _, n in got.chunks[:-1]:
        assert SMALL.chunk_min <= n <= SMALL.chunk_max
    assert known.read(store, got) == data
    assert {loc.codec for loc in got.new} == {codec.RAW, codec.ZSTD}
    # Same cut points from memory and from a file.
    assert store.ingest_bytes(data, known).chunks == got.chunks


def test_identical_chunks_within_one_file_are_stored_once(store: ChunkStore) -> None:
    block = os.urandom(300 * KiB)
    known = Known()
    got = known.add(store.ingest_bytes(block * 6, known))
    ids = [cid for cid, _ in got.chunks]
    assert len(got.new) == len(set(ids))  # every distinct chunk once, none twice
    assert len(set(ids)) < len(ids) / 2  # and the repeats really were repeats
    assert known.read(store, got) == block * 6


def test_identical_chunks_across_files_are_stored_once(store: ChunkStore) -> None:
    data = os.urandom(400 * KiB)
    known = Known()
    first = known.add(store.ingest_bytes(data, known))
    again = store.ingest_bytes(data, known)
    assert first.new and again.new == []
    assert again.chunks == first.chunks
    # A second file sharing a long stretch stores only the chunks around the difference.
    changed = os.urandom(1000) + data[100 * KiB :]
    other = known.add(store.ingest_bytes(changed, known))
    assert 0 < len(other.new) <= 3
    assert known.read(store, other) == changed


def test_an_insertion_changes_only_the_chunks_around_it() -> None:
    chunker = Chunker(SMALL)
    data = os.urandom(2 * MiB)
    before = {bytes(data[o : o + n]) for o, n in chunker.cut(memoryview(data))}
    changed = data[:MiB] + b"inserted" + data[MiB:]
    after = [bytes(changed[o : o + n]) for o, n in chunker.cut(memoryview(changed))]
    assert sum(1 for c in after if c not in before) <= 2
    assert b"".join(after) == changed


def test_file_of_chunk_min_or_less_is_one_chunk() -> None:
    chunker = Chunker(SMALL)
    for n in (1, 1000, SMALL.chunk_min):
        assert list(chunker.cut(memoryview(bytes(n)))) == [(0, n)]
    assert list(chunker.cut(memoryview(b""))) == []


def test_packs_rotate_past_the_target(store: ChunkStore, tmp_path: Path) -> None:
    known = Known()
    got = known.add(store.ingest_bytes(os.urandom(MiB), known))
    root = tmp_path / "packs"
    numbers = list_packs(root)
    assert len(numbers) >= 4
    for n in numbers[:-1]:
        size = pack_path(root, n).stat().st_size
        assert SMALL.pack_target <= size <= SMALL.pack_target + ENTRY.size + SMALL.chunk_max
    assert {loc.pack for loc in got.new} >= set(numbers[:-1])
    scanned = [loc for n in numbers for loc in scan_pack(pack_path(root, n))]
    assert scanned == got.new
    assert known.read(store, got) == b"".join(store.read_chunks(got.new))


def test_a_store_only_read_never_writes(tmp_path: Path) -> None:
    s = ChunkStore(tmp_path / "packs", SMALL)
    s.sync()
    s.close()
    assert list_packs(tmp_path / "packs") == []


def _stored(tmp_path: Path, data: bytes) -> tuple[ChunkStore, ChunkLocation, Path]:
    s = ChunkStore(tmp_path / "packs", SMALL)
    loc = s.ingest_bytes(data, Known()).new[0]
    return s, loc, pack_path(tmp_path / "packs", loc.pack)


@pytest.mark.parametrize("kind", ["text", "random"])
@pytest.mark.parametrize("where", ["header", "first", "middle", "last"])
def test_a_flipped_byte_names_chunk_and_pack(tmp_path: Path, kind: str, where: str) -> None:
    data = _text(3000) if kind == "text" else os.urandom(3000)
    s, loc, path = _stored(tmp_path, data)
    pos = {"header": loc.offset + 33, "first": loc.offset + ENTRY.size,
           "middle": loc.offset + ENTRY.size + loc.stored_len // 2,
           "last": loc.offset + ENTRY.size + loc.stored_len - 1}[where]
    raw = bytearray(path.read_bytes())
    raw[pos] ^= 0x01
    path.write_bytes(raw)
    try:
        with pytest.raises(CorruptChunk) as e:
            s.read_chunk(loc)
        assert loc.chunk_id.hex() in str(e.value)
        assert f"pack {loc.pack}" in str(e.value)
    finally:
        s.close()


def test_a_truncated_pack_is_corrupt(tmp_path: Path) -> None:
    s, loc, path = _stored(tmp_path, os.urandom(3000))
    os.truncate(path, loc.offset + ENTRY.size + 100)
    try:
        with pytest.raises(CorruptChunk, match=f"chunk {loc.chunk_id.hex()} in pack {loc.pack}.*truncated"):
            s.read_chunk(loc)
    finally:
        s.close()


def test_a_missing_pack_is_a_missing_chunk(tmp_path: Path) -> None:
    s, loc, path = _stored(tmp_path, os.urandom(3000))
    s.close()
    path.unlink()
    s = ChunkStore(tmp_path / "packs", SMALL)
    try:
        with pytest.raises(MissingChunk, match=loc.chunk_id.hex()):
            s.read_chunk(loc)
    finally:
        s.close()


def test_read_chunks_keeps_order(store: ChunkStore) -> None:
    known = Known()
    got = [known.add(store.ingest_bytes(os.urandom(1000 + i), known)) for i in range(50)]
    locs = [g.new[0] for g in got]
    out = list(store.read_chunks(locs[::-1]))
    assert [len(b) for b in out] == [1000 + i for i in reversed(range(50))]


# -- ingest leaves nothing behind. It used to map the staging file, and a view of the map left alive
# (by a pool thread, a traceback) made closing it raise BufferError: cannot close exported pointers exist

# Chunks above 64 KiB, which the pack writer writes from the caller's buffer without a copy.
BIG = StoreConfig(chunk_min=16 * KiB, chunk_avg=64 * KiB, chunk_max=256 * KiB, pack_target=4 * MiB)


class RecordingPool(ThreadPoolExecutor):
    """The store's pool, keeping every task's arguments and future.

    Keeping the arguments is what a worker thread does for a moment after a task's future completes
    (until it drops its work item): a thread preempted there held a slice of the map while ingest,
    woken by that future, closed it.
    """

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="test-chunk")
        self.tasks: list[tuple[tuple[Any, ...], Future[Any]]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        self.tasks.append((args, future))
        return future


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[ChunkStore, RecordingPool]]:
    s = ChunkStore(tmp_path / "packs", BIG, threads=2)
    s._pool.shutdown()
    s._pool = pool = RecordingPool()
    yield s, pool
    s.close()


class DiskFillsUp:
    """The `os` module as vfs.store.packs sees it, on a disk with `budget` bytes left."""

    def __init__(self, budget: int) -> None:
        self.budget = budget

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        with memoryview(data)[: self.budget] as part:
            n = os.write(fd, part)
        self.budget -= n
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


def _random_file(tmp_path: Path, size: int = 2 * MiB) -> tuple[Path, bytes]:
    data = os.urandom(size)  # raw chunks: written from the ingest's own buffer
    f = tmp_path / "staging"
    f.write_bytes(data)
    return f, data


def test_ingest_holds_when_a_worker_keeps_its_task_arguments(
    recorded: tuple[ChunkStore, RecordingPool], tmp_path: Path,
) -> None:
    store, pool = recorded
    f, data = _random_file(tmp_path)
    known = Known()
    got = known.add(store.ingest(f, known))  # raised BufferError: cannot close exported pointers exist
    assert len(pool.tasks) > 10
    assert known.read(store, got) == data


@pytest.mark.parametrize("failing", ["pack write", "chunk lookup"])
def test_an_error_during_ingest_is_raised_as_itself_and_leaves_no_task_running(
    recorded: tuple[ChunkStore, RecordingPool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str,
) -> None:
    store, pool = recorded
    f, data = _random_file(tmp_path)
    known = Known()
    lookups = 0

    def lookup_fails(cid: ChunkId) -> bool:
        nonlocal lookups
        lookups += 1
        if lookups == 5:
            raise RuntimeError("the catalog failed")
        return known(cid)

    if failing == "pack write":
        # (The traceback's frames held views of the map: BufferError instead of NoSpace.)
        monkeypatch.setattr(packs, "os", DiskFillsUp(300 * KiB))
        with pytest.raises(NoSpace):
            store.ingest(f, known)
    else:
        with pytest.raises(RuntimeError, match="the catalog failed"):
            store.ingest(f, lookup_fails)
    # No task goes on after ingest gave up (the staging file may be truncated or reused next).
    assert all(future.done() for _, future in pool.tasks)
    monkeypatch.undo()
    got = known.add(store.ingest(f, known))  # the store goes on, its pack intact
    assert known.read(store, got) == data


def test_a_file_read_in_windows_has_the_chunks_of_the_whole(
    store: ChunkStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chunkstore, "_READ_WINDOW", 300 * KiB)  # a window holds ~5 maximal chunks
    data = b"".join(os.urandom(70_000) + _text(90_000, i) + bytes(50_000) for i in range(12))
    f = tmp_path / "staging"
    f.write_bytes(data)
    known = Known()
    got = known.add(store.ingest(f, known))
    whole = [n for _, n in Chunker(SMALL).cut(memoryview(data))]
    assert [n for _, n in got.chunks] == whole and len(whole) > 30
    assert got.size == len(data) and got.content_hash == blake3.blake3(data).digest()
    assert known.read(store, got) == data
    assert store.ingest_bytes(data, known).chunks == got.chunks
