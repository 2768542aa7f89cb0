"""Lazy fetch: PackFetcher (given where packs live locally and remotely and how to open the remote, it
fetches a missing pack once, verified, or a range of one, and knows nothing of the repository), and a
lazy clone against moto through the fault proxy reading only what it needs (vfs.store.partial)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

from tests.backend.faultproxy import FaultProxy
from tests.conftest import LogWatch
from tests.sync.conftest import backend_of, make_store, write
from vfs.backend import Backend, MemoryBackend
from vfs.catalog import Version
from vfs.config import MiB, RemoteConfig, StoreConfig
from vfs.errors import CorruptChunk, MissingChunk
from vfs.repository import Repository
from vfs.store import ChunkLocation, codec
from vfs.store.keys import VolumeKeys
from vfs.store.packs import partial_path
from vfs.sync import layout
from vfs.sync.backlog import evict
from vfs.sync.clone import clone
from vfs.sync.fetch import PackFetcher, remote_fetcher
from vfs.sync.layout import pack_key
from vfs.sync.sealed import SealedBackend
from vfs.sync.uploader import Uploader
from vfs.types import ROOT_INO, PackNo

PACK = b"pack bytes " * 1000


def fetcher(
    tmp_path: Path, backend: MemoryBackend, remote: dict[int, tuple[str, int]]
) -> tuple[PackFetcher, list[int]]:
    opened: list[int] = []

    def open_backend() -> Backend:
        opened.append(1)
        return backend

    return PackFetcher(lambda p: tmp_path / "packs" / f"{p}.pack", remote.get, open_backend), opened


def test_a_missing_pack_is_fetched_once_verified_and_private(tmp_path: Path) -> None:
    backend = MemoryBackend()
    key = pack_key(codec.chunk_id(PACK))
    backend.put(key, PACK)
    fetch, opened = fetcher(tmp_path, backend, {1: (key, len(PACK))})
    path = fetch(PackNo(1))
    assert path.read_bytes() == PACK and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fetch(PackNo(1)) == path and opened == [1]  # there now: no second download, one backend
    assert [p.name for p in path.parent.iterdir()] == ["1.pack"]  # no temporary file left
    fetch.close()


def test_a_pack_the_remote_lacks_is_missing_and_the_remote_is_not_opened(tmp_path: Path) -> None:
    fetch, opened = fetcher(tmp_path, MemoryBackend(), {})
    with pytest.raises(MissingChunk, match="remote does not hold it"):
        fetch(PackNo(7))
    assert opened == []


def test_a_corrupt_remote_pack_is_never_written(tmp_path: Path, log_watch: LogWatch) -> None:
    log_watch.expect("is corrupt")
    backend = MemoryBackend()
    key = pack_key(codec.chunk_id(PACK))
    backend.put(key, PACK[:-1] + b"!")
    fetch, _ = fetcher(tmp_path, backend, {2: (key, len(PACK))})
    with pytest.raises(CorruptChunk, match=key):
        fetch(PackNo(2))
    assert not (tmp_path / "packs" / "2.pack").exists()


def test_a_range_of_a_remote_pack_is_read_as_it_is_and_named(tmp_path: Path) -> None:
    backend = MemoryBackend()
    key = pack_key(codec.chunk_id(PACK))
    backend.put(key, PACK)
    fetch, _ = fetcher(tmp_path, backend, {1: (key, len(PACK))})
    assert fetch.read_range(PackNo(1), 100, 50) == (PACK[100:150], f"remote object {key} ({backend.url})")
    with pytest.raises(CorruptChunk, match=f"{key}.*past its end"):  # the catalog and the object disagree
        fetch.read_range(PackNo(1), len(PACK) - 10, 20)
    backend.put(key, PACK[:-100])  # shorter than recorded
    with pytest.raises(CorruptChunk, match=key):
        fetch.read_range(PackNo(1), len(PACK) - 150, 100)
    with pytest.raises(MissingChunk, match="remote does not hold it"):
        fetch.read_range(PackNo(2), 0, 10)
    assert not (tmp_path / "packs").exists()  # nothing written: the store keeps what it checked


def test_the_sealing_wrapper_passes_ranges_of_packs_through_and_opens_sealed_objects_whole() -> None:
    inner = MemoryBackend()
    sealed = SealedBackend(inner, VolumeKeys.generate())
    key = pack_key(codec.chunk_id(PACK))
    sealed.put(key, PACK)  # packs are sealed entry by entry by the store, not by the wrapper
    assert inner.get(key) == PACK and sealed.get_range(key, 10, 20) == PACK[10:30]
    other = layout.wrap(b"a checkpoint's payload")
    sealed.put("catalog/0000000000000001-base", other)
    assert inner.get("catalog/0000000000000001-base") != other  # sealed in the bucket
    assert sealed.get_range("catalog/0000000000000001-base", 6, 9) == other[6:15]  # opened, then the range


# -- a lazy clone against moto, through the fault proxy ----------------------------------------------
BIG_PACKS = StoreConfig()  # the default: 16 MiB packs


def pack_gets(proxy: FaultProxy) -> list[tuple[str | None, int]]:
    """(Range header, body bytes) of each GET of a pack object the proxy answered."""
    return [(rng, n) for method, path, rng, n in proxy.answered if method == "GET" and "/packs/" in path]


def version(repo: Repository, name: str) -> Version:
    ino = repo.catalog.lookup(ROOT_INO, name.encode())
    assert ino is not None
    v = repo.catalog.version_at(ino)
    assert v is not None
    return v


def read_sequentially(repo: Repository, v: Version, step: int = MiB) -> bytes:
    """As the kernel reads a file through the mount: one request after another."""
    return b"".join(repo.read(v, offset, step) for offset in range(0, v.size, step))


def entries(repo: Repository, v: Version) -> list[ChunkLocation]:
    return repo.catalog.locate_all([cid for cid, _ in v.chunks])


@contextmanager
def lazy_clone_of(tmp_path: Path, remote: RemoteConfig, files: dict[str, bytes],
                  config: StoreConfig = BIG_PACKS) -> Iterator[Repository]:
    """A store holding `files`, synced; then a lazy clone of it, open (as vfs opens it)."""
    with make_store(tmp_path / "origin", remote, config) as origin:
        for name, data in files.items():
            write(origin, name, data)
        origin.chunks.seal()
        trio.run(Uploader(origin, backend_of(remote)).round)
    with backend_of(remote) as backend:
        clone(backend, remote, tmp_path / "lazy", lazy=True).close()
    with Repository.open(tmp_path / "lazy", fetcher=remote_fetcher) as repo:
        yield repo


@pytest.mark.s3
@pytest.mark.slow
def test_reading_one_file_of_a_lazy_clone_downloads_about_that_file(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    files = {"before": os.urandom(9 * MiB), "wanted": os.urandom(2 * MiB), "after": os.urandom(9 * MiB)}
    with lazy_clone_of(tmp_path, remote, files) as repo:
        v = version(repo, "wanted")
        locs = entries(repo, v)
        assert len({loc.pack for loc in locs}) == 1 and repo.catalog.remote_pack(locs[0].pack)[1] >= 16 * MiB
        proxy.answered.clear()
        assert read_sequentially(repo, v) == files["wanted"]
        gets = pack_gets(proxy)
        stored = sum(loc.entry_size for loc in locs)
        assert gets and all(rng is not None for rng, _ in gets), gets  # ranged, never a whole pack
        assert sum(n for _, n in gets) <= 1.2 * stored, (gets, stored)
        assert not list((tmp_path / "lazy" / "packs").glob("*/*.pack"))  # nothing taken for a whole pack
        proxy.answered.clear()
        assert b"".join(repo.iter_content(v)) == files["wanted"]  # kept: read again, nothing fetched
        assert pack_gets(proxy) == []
        assert repo.catalog.check() == []


@pytest.mark.s3
@pytest.mark.slow
def test_a_big_sequential_read_of_a_lazy_clone_is_ranged_reads(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    big = os.urandom(40 * MiB)
    with lazy_clone_of(tmp_path, remote, {"big": big}) as repo:
        v = version(repo, "big")
        proxy.answered.clear()
        assert read_sequentially(repo, v, 128 * 1024) == big
        gets = pack_gets(proxy)
        assert len(gets) > 5 and all(rng is not None and n <= 4 * MiB for rng, n in gets), gets
        assert sum(n for _, n in gets) <= 1.05 * sum(loc.entry_size for loc in entries(repo, v))


@pytest.mark.s3
def test_damaged_remote_entries_are_never_served_nor_kept(tmp_path: Path, remote: RemoteConfig,
                                                          log_watch: LogWatch) -> None:
    files = {"a": os.urandom(300_000), "b": os.urandom(300_000)}
    with lazy_clone_of(tmp_path, remote, files, StoreConfig(pack_target=MiB)) as repo:
        va, vb = version(repo, "a"), version(repo, "b")
        victim = entries(repo, vb)[0]
        key, _size = repo.catalog.remote_pack(victim.pack) or ("", 0)
        with backend_of(remote) as backend:
            damaged = bytearray(backend.get(key))
            damaged[victim.offset + victim.entry_size - 1] ^= 0x10
            backend.put(key, bytes(damaged))
        for _ in range(2):  # refused, and not kept: asked again, it is refused again
            with pytest.raises(CorruptChunk, match=key):
                repo.read(vb, 0, 1000)
        assert read_sequentially(repo, va) == files["a"]  # the intact entries of the same pack are served
        kept = partial_path(tmp_path / "lazy" / "packs", victim.pack).read_bytes()
        assert kept[victim.offset : victim.offset + victim.entry_size].strip(b"\0") == b""


@pytest.mark.s3
def test_a_torn_partial_pack_is_fetched_again(tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy) -> None:
    data = os.urandom(1_500_000)
    with lazy_clone_of(tmp_path, remote, {"f": data}, StoreConfig(pack_target=MiB)) as repo:
        v = version(repo, "f")
        assert read_sequentially(repo, v) == data
        locs = entries(repo, v)
    victim = locs[len(locs) // 2]
    path = partial_path(tmp_path / "lazy" / "packs", victim.pack)
    with open(path, "r+b") as f:  # a kill during the write of one entry: its bytes half there
        f.seek(victim.offset + victim.entry_size // 2)
        f.write(bytes(victim.entry_size // 2))
    proxy.answered.clear()
    with Repository.open(tmp_path / "lazy", fetcher=remote_fetcher) as repo:
        assert read_sequentially(repo, v) == data
    assert sum(n for _, n in pack_gets(proxy)) == victim.entry_size  # that entry only


@pytest.mark.s3
def test_the_cache_size_bounds_partial_packs(tmp_path: Path, remote: RemoteConfig) -> None:
    files = {f"f{i}": os.urandom(700_000) for i in range(8)}
    cap = 2 * MiB
    with lazy_clone_of(tmp_path, remote, files, StoreConfig(pack_target=MiB)) as repo:
        repo.chunks.cache_size = cap  # as a follower mount with --cache-size sets it (no uploader runs)
        for name, data in files.items():
            assert read_sequentially(repo, version(repo, name)) == data
            on_disk = sum(p.stat().st_blocks * 512 for p in (tmp_path / "lazy" / "packs").glob("*/*.partial"))
            assert 0 < on_disk <= cap
        assert evict(repo, 0) is None  # the uploader's eviction takes partial packs too
        assert not list((tmp_path / "lazy" / "packs").glob("*/*.partial"))
        assert read_sequentially(repo, version(repo, "f0")) == files["f0"]  # evicted: fetched again
