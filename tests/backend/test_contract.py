"""The one contract every backend keeps (vfs.backend.base), run over each of them.

`stack` is what `open_backend` builds (retry and limit wrappers) around a memory backend, so the
wrappers are held to the contract too; `s3` talks to the session's moto server.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vfs.backend import Backend, open_backend
from vfs.backend.local import LocalBackend
from vfs.backend.memory import MemoryBackend
from vfs.errors import BackendNotFound, UsageError

MiB = 1024 * 1024


@pytest.fixture(params=["memory", "local", "stack", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b: Backend
    if request.param == "memory":
        b = MemoryBackend()
    elif request.param == "local":
        b = LocalBackend(tmp_path / "remote")
    elif request.param == "stack":
        b = open_backend("memory://contract", connections=2)
    else:
        from vfs.backend.s3 import S3Backend

        bucket = request.getfixturevalue("s3_bucket")
        b = S3Backend(f"s3://{bucket}/vol/1", endpoint_url=request.getfixturevalue("moto_endpoint"))
    with b:
        yield b


def test_put_get_overwrite(backend: Backend) -> None:
    backend.put("obj", b"hello")
    assert backend.get("obj") == b"hello"
    backend.put("obj", b"bye")
    assert backend.get("obj") == b"bye"
    assert backend.head("obj") == 3


def test_empty_object(backend: Backend) -> None:
    backend.put("empty", b"")
    assert backend.get("empty") == b""
    assert backend.head("empty") == 0
    assert backend.get_range("empty", 0, 10) == b""
    assert list(backend.list()) == ["empty"]


def test_missing_key(backend: Backend) -> None:
    with pytest.raises(BackendNotFound) as info:
        backend.get("nope/missing")
    assert "nope/missing" in str(info.value)
    assert not backend.is_transient(info.value)
    with pytest.raises(BackendNotFound):
        backend.get_range("nope/missing", 0, 10)
    with pytest.raises(BackendNotFound):
        backend.get_range("nope/missing", 0, 0)
    assert backend.head("nope/missing") is None
    backend.delete("nope/missing")  # deleting what is not there is fine


def test_get_range(backend: Backend) -> None:
    data = bytes(range(256)) * 4
    backend.put("r", data)
    assert backend.get_range("r", 0, 10) == data[:10]
    assert backend.get_range("r", 100, 300) == data[100:400]
    assert backend.get_range("r", 1000, 100) == data[1000:]  # short only where the object ends
    assert backend.get_range("r", 1024, 10) == b""
    assert backend.get_range("r", 5000, 10) == b""
    assert backend.get_range("r", 7, 0) == b""
    with pytest.raises(UsageError, match="offset"):
        backend.get_range("r", -1, 10)
    with pytest.raises(UsageError, match="length"):
        backend.get_range("r", 0, -1)


def test_keys_with_slashes_and_odd_characters(backend: Backend) -> None:
    keys = ["packs/ab/abcdef", "packs/ab/abcdff", "packs/cd/cd01", "catalog/0001", "snap shots/über+x=1&y~"]
    for i, key in enumerate(keys):
        backend.put(key, f"object {i}".encode())
    for i, key in enumerate(keys):
        assert backend.get(key) == f"object {i}".encode()
        assert backend.head(key) == len(f"object {i}".encode())
    assert list(backend.list()) == sorted(keys)
    assert backend.head("packs/ab") is None  # a prefix is not an object
    with pytest.raises(BackendNotFound):
        backend.get("packs")


def test_list_prefix_is_a_plain_string_prefix(backend: Backend) -> None:
    for key in ["pa", "packs/1", "packs/2", "pax", "pb/1", "q"]:
        backend.put(key, b"x")
    assert list(backend.list("pa")) == ["pa", "packs/1", "packs/2", "pax"]
    assert list(backend.list("packs/")) == ["packs/1", "packs/2"]
    assert list(backend.list("packs/2")) == ["packs/2"]
    assert list(backend.list("zzz")) == []
    assert list(backend.list("nothere/deep/")) == []
    assert list(backend.list("", start_after="packs/1")) == ["packs/2", "pax", "pb/1", "q"]
    assert list(backend.list("pa", start_after="pa")) == ["packs/1", "packs/2", "pax"]


def test_delete(backend: Backend) -> None:
    backend.put("d/1", b"1")
    backend.put("d/2", b"2")
    backend.delete("d/1")
    assert backend.head("d/1") is None
    with pytest.raises(BackendNotFound):
        backend.get("d/1")
    assert list(backend.list("d/")) == ["d/2"]
    backend.delete("d/2")
    assert list(backend.list()) == []
    backend.put("d/1", b"again")  # a prefix emptied by deletes can be written to again
    assert backend.get("d/1") == b"again"


def test_invalid_keys(backend: Backend) -> None:
    for key in ["", "/abs", "a//b", "a/../b", "./a", "trailing/", "nul\0byte"]:
        with pytest.raises(UsageError):
            backend.put(key, b"x")
        with pytest.raises(UsageError):
            backend.get(key)


def test_large_object(backend: Backend) -> None:
    data = random.Random(1).randbytes(20 * MiB)
    backend.put("big/object", data)
    assert backend.head("big/object") == len(data)
    assert backend.get("big/object") == data
    mid = len(data) // 2 - 12345
    assert backend.get_range("big/object", mid, 3 * MiB) == data[mid : mid + 3 * MiB]


def test_concurrent_use(backend: Backend) -> None:
    blobs = {f"c/{i:03d}": os.urandom(random.Random(i).randrange(1, 100_000)) for i in range(40)}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda kv: backend.put(*kv), blobs.items()))
        got = dict(zip(blobs, pool.map(backend.get, blobs), strict=True))
    assert got == blobs
    assert list(backend.list("c/")) == sorted(blobs)


def test_put_if_absent_stores_only_where_nothing_is(backend: Backend) -> None:
    assert backend.put_if_absent("lease/x", b"first") is True
    assert backend.put_if_absent("lease/x", b"second") is False
    assert backend.get("lease/x") == b"first"
    backend.delete("lease/x")
    assert backend.put_if_absent("lease/x", b"third") is True  # a deleted key is free again
    assert backend.get("lease/x") == b"third"


def test_put_if_absent_has_one_winner_among_racers(backend: Backend) -> None:
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: backend.put_if_absent("race", f"{i}".encode()), range(16)))
    assert won.count(True) == 1
    assert backend.get("race") == str(won.index(True)).encode()
