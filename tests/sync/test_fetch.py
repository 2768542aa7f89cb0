"""PackFetcher: given where packs live locally and remotely and how to open the remote, it fetches a
missing pack once, verified, and knows nothing of the repository."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.conftest import LogWatch
from vfs.backend import Backend, MemoryBackend
from vfs.errors import CorruptChunk, MissingChunk
from vfs.store import codec
from vfs.sync.fetch import PackFetcher
from vfs.sync.layout import pack_key
from vfs.types import PackNo

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
