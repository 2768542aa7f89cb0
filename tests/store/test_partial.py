"""Partial packs: a store without a pack reads its entries one range at a time (vfs.store.partial), checked
before they are kept or served, coalesced, in parallel for read-ahead, and bounded by the cache size."""

from __future__ import annotations

import os
import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import open_files_under
from vfs.config import KiB, MiB, StoreConfig
from vfs.errors import CorruptChunk, MissingChunk
from vfs.store import ChunkLocation, ChunkStore, ContentReader, partial
from vfs.store.keys import VolumeKeys
from vfs.store.packs import list_packs, pack_path, partial_path
from vfs.types import ChunkId, PackNo

SMALL = StoreConfig(chunk_min=16 * KiB, chunk_avg=64 * KiB, chunk_max=256 * KiB, pack_target=2 * MiB)
KEYS = VolumeKeys.generate()


@dataclass
class Remote:
    """Stands in for the remote: pack number -> the pack object's bytes; records every ranged read."""

    objects: dict[int, bytes]
    delay: float = 0.0
    # Until two ranged reads were in flight at once, each waits up to this many seconds for another to
    # start: runs asked for together then overlap however slowly a loaded machine starts the threads
    # (with `delay` alone they had to start within it). A read the reader must have before it asks for
    # more waits it out; a read-ahead that never asks for two at once fails the test.
    company: float = 0.0
    ranges: list[tuple[int, int, int]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, pack: PackNo, offset: int, length: int) -> tuple[bytes, str]:
        with self.lock:
            self.ranges.append((pack, offset, length))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.lock.notify_all()
            if self.company and self.most_in_flight < 2:
                self.lock.wait_for(lambda: self.most_in_flight >= 2, timeout=self.company)
        try:
            time.sleep(self.delay)
            if pack not in self.objects:
                raise MissingChunk(f"pack {pack}: the remote does not hold it")
            return self.objects[pack][offset : offset + length], f"remote object packs/{pack}"
        finally:
            with self.lock:
                self.in_flight -= 1

    @property
    def fetched(self) -> int:
        return sum(n for _, _, n in self.ranges)


@dataclass
class Content:
    hash: bytes
    size: int
    chunks: list[tuple[ChunkId, int]]


@dataclass
class Volume:
    """Files written by a store with all its packs; `lazy()` opens another store that has none of them."""

    root: Path
    keys: VolumeKeys | None
    files: dict[str, tuple[bytes, Content]] = field(default_factory=dict)
    locs: dict[ChunkId, ChunkLocation] = field(default_factory=dict)
    remote: Remote = field(default_factory=lambda: Remote({}))

    def write(self, sizes: dict[str, int]) -> None:
        with closing(ChunkStore(self.root / "full", SMALL, keys=self.keys, encrypted=self.keys is not None)) as store:
            for name, size in sizes.items():
                data = os.urandom(size)
                got = store.ingest_bytes(data, lambda cid: cid in self.locs)
                for loc in got.new:
                    self.locs.setdefault(loc.chunk_id, loc)
                self.files[name] = (data, Content(got.content_hash, got.size, got.chunks))
            store.seal()
        for n in list_packs(self.root / "full"):
            self.remote.objects[n] = pack_path(self.root / "full", n).read_bytes()

    def lazy(self, cache_size: int | None = None) -> closing[ChunkStore]:
        """A store that has none of the packs (the same directory each time: what it fetched stays)."""
        return closing(ChunkStore(self.root / "lazy", SMALL, fetch_range=self.remote, keys=self.keys,
                                  encrypted=self.keys is not None, cache_size=cache_size))

    def reader(self, store: ChunkStore) -> ContentReader:
        return ContentReader(store, lambda ids: [self.locs[cid] for cid in ids])

    def entries(self, name: str) -> list[ChunkLocation]:
        return [self.locs[cid] for cid, _ in self.files[name][1].chunks]


@pytest.fixture(params=["plain", "sealed"])
def volume(request: pytest.FixtureRequest, tmp_path: Path) -> Volume:
    return Volume(tmp_path, KEYS if request.param == "sealed" else None)


def read_file(reader: ContentReader, content: Content, step: int = 128 * KiB) -> bytes:
    """A sequential reader, as the kernel reads a file."""
    out = [reader.read(content, offset, step) or b"" for offset in range(0, content.size, step)]
    return b"".join(out)


def partial_files(root: Path) -> list[Path]:
    return sorted((root / "lazy").glob("*/*.partial"))


def test_a_file_costs_its_own_entries_and_a_second_read_fetches_nothing(volume: Volume) -> None:
    volume.write({"a": 700 * KiB, "b": 500 * KiB, "c": 700 * KiB})
    with volume.lazy() as store:
        reader = volume.reader(store)
        data, content = volume.files["b"]
        assert read_file(reader, content) == data
        stored = sum(loc.entry_size for loc in volume.entries("b"))
        assert volume.remote.fetched == stored  # exactly its entries: not a byte of "a" or "c"
        assert list_packs(volume.root / "lazy") == [] and len(partial_files(volume.root)) >= 1
    volume.remote.ranges.clear()
    with volume.lazy() as store:  # a new process: the partial pack holds them
        assert b"".join(store.read_chunks(volume.entries("b"))) == data
        assert volume.remote.ranges == []
        with pytest.raises(MissingChunk):  # not there, and no fetch allowed (an event loop's inline read)
            store.read_chunk(volume.entries("a")[0], fetch=False)
        assert store.read_chunk(volume.entries("b")[0], fetch=False) == data[: content.chunks[0][1]]


def test_neighbouring_entries_of_one_read_are_one_ranged_read(volume: Volume) -> None:
    volume.write({"a": 600 * KiB})
    with volume.lazy() as store:
        entries = volume.entries("a")
        assert len(entries) >= 3
        assert b"".join(store.read_chunks(entries)) == volume.files["a"][0]
        assert len(volume.remote.ranges) == 1


def test_a_sequential_read_fetches_ahead_in_parallel(volume: Volume) -> None:
    volume.write({"big": 6 * MiB})
    volume.remote.delay = 0.05
    volume.remote.company = 1.0
    with volume.lazy() as store:
        reader = volume.reader(store)
        data, content = volume.files["big"]
        assert read_file(reader, content) == data
    assert volume.remote.most_in_flight >= 2, volume.remote.ranges
    assert all(n <= 4 * MiB for _, _, n in volume.remote.ranges)
    assert volume.remote.fetched <= sum(loc.entry_size for loc in volume.entries("big")) * 1.05


def test_damaged_remote_bytes_are_never_served_nor_kept(volume: Volume) -> None:
    volume.write({"a": 300 * KiB, "b": 300 * KiB})
    victim = volume.entries("b")[1]
    pack = bytearray(volume.remote.objects[victim.pack])
    pack[victim.offset + victim.entry_size - 10] ^= 1
    volume.remote.objects[victim.pack] = bytes(pack)
    with volume.lazy() as store:
        for _ in range(2):  # not kept: asked again, it is fetched again and refused again
            with pytest.raises(CorruptChunk, match=f"packs/{victim.pack}"):
                store.read_chunk(victim)
        assert b"".join(store.read_chunks(volume.entries("a"))) == volume.files["a"][0]
    kept = partial_path(volume.root / "lazy", victim.pack).read_bytes()
    assert kept[victim.offset : victim.offset + victim.entry_size].strip(b"\0") == b""
    assert sum(1 for p, o, _ in volume.remote.ranges if (p, o) == (victim.pack, victim.offset)) == 2


def test_a_torn_partial_pack_is_fetched_again(volume: Volume) -> None:
    volume.write({"a": 800 * KiB})
    entries = volume.entries("a")
    with volume.lazy() as store:
        assert b"".join(store.read_chunks(entries)) == volume.files["a"][0]
    path = partial_path(volume.root / "lazy", entries[0].pack)
    with open(path, "r+b") as f:  # as a kill mid-write leaves it: one entry zeroed, the file cut short
        f.seek(entries[1].offset + 7)
        f.write(bytes(100))
        f.truncate(entries[-1].offset + 50)
    volume.remote.ranges.clear()
    with volume.lazy() as store:
        assert b"".join(store.read_chunks(entries)) == volume.files["a"][0]
    refetched = {o for _, o, _ in volume.remote.ranges}
    assert entries[0].offset not in refetched and volume.remote.fetched < sum(e.entry_size for e in entries)


def test_two_readers_of_one_entry_share_one_fetch(volume: Volume) -> None:
    volume.write({"a": 200 * KiB})
    volume.remote.delay = 0.2
    loc = volume.entries("a")[0]
    with volume.lazy() as store:
        got: list[bytes] = []
        threads = [threading.Thread(target=lambda: got.append(store.read_chunk(loc))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == 4 and len(set(got)) == 1
    assert len(volume.remote.ranges) == 1


def test_idle_partial_files_stay_open_up_to_a_bound(volume: Volume, monkeypatch: pytest.MonkeyPatch) -> None:
    """A follower reads a new pack at each refresh: the partial files it keeps open are bounded, and one
    closed is opened again when read, with nothing fetched again."""
    monkeypatch.setattr(partial, "_OPEN_IDLE_MAX", 2)
    volume.write({f"f{i}": 700 * KiB for i in range(8)})
    lazy = volume.root / "lazy"
    with volume.lazy() as store:
        reader = volume.reader(store)
        for data, content in volume.files.values():
            assert read_file(reader, content) == data
        assert len(partial_files(volume.root)) >= 3
        assert len(open_files_under(lazy)) == 2
        fetched = volume.remote.fetched
        for name, (data, _) in volume.files.items():  # from the partial files, closed ones reopened
            assert b"".join(store.read_chunks(volume.entries(name))) == data
        assert volume.remote.fetched == fetched
        assert len(open_files_under(lazy)) == 2
    assert open_files_under(lazy) == []


def test_the_cache_size_bounds_partial_packs_least_recently_read_first(volume: Volume) -> None:
    volume.write({f"f{i}": 1536 * KiB for i in range(6)})  # 2 MiB packs: the files lie in several packs
    cap = 3 * MiB
    with volume.lazy(cache_size=cap) as store:
        reader = volume.reader(store)
        for name, (data, content) in volume.files.items():
            assert read_file(reader, content) == data
            usage = store.partial_packs()
            on_disk = sum(n for n, _ in usage.values())
            assert on_disk <= cap, (name, usage)
            assert on_disk == sum(p.stat().st_blocks * 512 for p in partial_files(volume.root))
        last = volume.entries("f5")[-1].pack
        assert last in store.partial_packs()  # the most recently read is kept
        store.cache_size = 0
        store.read_chunk(volume.entries("f0")[0])  # a fetch trims: nothing but what is in use may stay
        assert sum(n for n, _ in store.partial_packs().values()) == 0 and partial_files(volume.root) == []


def test_a_pack_the_remote_lacks_is_missing_and_makes_no_file(volume: Volume) -> None:
    volume.write({"a": 100 * KiB})
    loc = volume.entries("a")[0]
    del volume.remote.objects[loc.pack]
    with volume.lazy() as store, pytest.raises(MissingChunk, match="does not hold it"):
        store.read_chunk(loc)
    assert partial_files(volume.root) == []


def test_a_whole_pack_that_arrives_replaces_the_partial_one(volume: Volume) -> None:
    volume.write({"a": 300 * KiB})
    entries = volume.entries("a")
    with volume.lazy() as store:
        assert store.read_chunk(entries[0])
        assert partial_files(volume.root)
        dest = pack_path(volume.root / "lazy", entries[0].pack)
        dest.write_bytes(volume.remote.objects[entries[0].pack])  # as `vfs fetch` places it
        volume.remote.ranges.clear()
        assert b"".join(store.read_chunks(entries)) == volume.files["a"][0]
        assert volume.remote.ranges == [] and partial_files(volume.root) == []
