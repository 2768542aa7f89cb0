"""Sync tests: a moto server on 127.0.0.1 (the backend tests' fixtures), a fault proxy in front of it,
and helpers to fill a store and compare two stores version by version."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.faultproxy import FaultProxy
from tests.catalog.helpers import inode_exists
from vfs.backend import Backend, RetryPolicy, open_backend
from vfs.compose import open_follower_store, open_repository
from vfs.config import RemoteConfig, StoreConfig
from vfs.repository import Repository
from vfs.store.keys import KdfParams
from vfs.sync.clone import clone
from vfs.sync.remote import sealed_for
from vfs.types import ROOT_INO, InodeNo

PASSPHRASE = "correct horse battery staple"
WEAK_KDF = KdfParams(t=1, m=64, p=1)  # tests only: the default costs a quarter of a second per unlock
FAST_RETRY = RetryPolicy(max_attempts=30, max_time=60.0, base_delay=0.02, max_delay=0.3)
SMALL_PACKS = StoreConfig(pack_target=1 << 20)


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of the moto server, faultless until a test sets rate/kinds/status."""
    with FaultProxy(moto_endpoint, seed=1) as p:
        yield p


# The encrypted runs double the sync tests' time: they are in the long tests, which CI runs too.
@pytest.fixture(params=["plain", pytest.param("encrypted", marks=pytest.mark.slow)])
def encrypted(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run the test on a plain and on an encrypted volume (every test with a `remote` does).

    Encrypted: stores made in the test are encrypted and opened with PASSPHRASE (the defaults of
    Repository.init, Repository.open, open_repository, open_follower_store and clone, set for the
    test's duration; a weak KDF keeps it fast), and vfs commands find it in VFS_PASSWORD; `vfs init`
    adds `init_flags()`.
    """
    if request.param == "plain":
        return False
    monkeypatch.setenv("VFS_PASSWORD", PASSPHRASE)
    init_defaults = Repository.init.__func__.__kwdefaults__  # type: ignore[attr-defined]
    monkeypatch.setitem(init_defaults, "passphrase", PASSPHRASE.encode())
    monkeypatch.setitem(init_defaults, "kdf", WEAK_KDF)
    unlock = lambda: PASSPHRASE.encode()  # noqa: E731
    monkeypatch.setitem(Repository.open.__func__.__kwdefaults__, "passphrase", unlock)  # type: ignore[attr-defined]
    monkeypatch.setitem(clone.__kwdefaults__, "passphrase", unlock)  # type: ignore[arg-type]
    monkeypatch.setitem(open_repository.__kwdefaults__, "passphrase", unlock)  # type: ignore[arg-type]
    monkeypatch.setitem(open_follower_store.__kwdefaults__, "passphrase", unlock)  # type: ignore[arg-type]
    return True


def init_flags() -> list[str]:
    """What `vfs init` needs in a test run by `encrypted` (which put the passphrase in VFS_PASSWORD)."""
    return ["--encrypt"] if "VFS_PASSWORD" in os.environ else []


@pytest.fixture
def remote(s3_bucket: str, proxy: FaultProxy, encrypted: bool) -> RemoteConfig:
    return RemoteConfig(f"s3://{s3_bucket}/vol", proxy.url)


def backend_of(remote: RemoteConfig, repo: Repository | None = None) -> Backend:
    """The remote's objects; with `repo`, as that store's sync sees them (opened, if it is encrypted)."""
    backend = open_backend(remote.url, endpoint_url=remote.endpoint_url, retry=FAST_RETRY, read_timeout=10.0)
    return backend if repo is None else sealed_for(repo, backend)


def make_store(path: Path, remote: RemoteConfig, config: StoreConfig = SMALL_PACKS) -> Repository:
    repo = Repository.init(path, config)
    repo.catalog.set_meta("remote", remote.to_json())
    repo.close()
    return open_repository(path)  # as vfs opens it: packs it lacks come from the remote


def write(repo: Repository, name: str, data: bytes, parent: InodeNo = ROOT_INO) -> InodeNo:
    ino = repo.catalog.lookup(parent, name.encode())
    if ino is None:
        ino = repo.catalog.create(parent, name.encode(), 0o100644, 0, 0).ino
    repo.commit_bytes(ino, data)
    return ino


def fill(repo: Repository, files: int, size: int, seed: int = 0) -> dict[str, bytes]:
    """`files` files of random, partly repeated content (so dedup has something to find)."""
    rng = random.Random(seed)
    out = {}
    common = rng.randbytes(size // 2)
    for i in range(files):
        data = common + rng.randbytes(size - size // 2) if i % 3 == 0 else rng.randbytes(rng.randint(1, size))
        out[f"f{i:04d}"] = data
        write(repo, f"f{i:04d}", data)
    return out


def assert_same_volume(a: Repository, b: Repository) -> int:
    """Every version of every inode, every snapshot and the tree at each snapshot are equal; the count
    of versions compared."""
    assert [(s.name, s.commit_no) for s in a.catalog.snapshots()] == [
        (s.name, s.commit_no) for s in b.catalog.snapshots()]
    for s in a.catalog.snapshots():
        assert a.catalog.tree(s.commit_no) == b.catalog.tree(s.commit_no)
    head = a.catalog.head().no
    assert a.catalog.tree(head) == b.catalog.tree(head)
    compared = 0
    missing = 0
    ino = 1
    while missing < 100:  # inode numbers are dense: past the last one, stop
        ino += 1
        if not inode_exists(a.catalog, InodeNo(ino)):
            missing += 1
            continue
        missing = 0
        for v in a.catalog.versions(InodeNo(ino)):
            w = b.catalog.version(InodeNo(ino), v.vno)
            assert w is not None and (w.size, w.hash) == (v.size, v.hash)
            assert b"".join(b.iter_content(w)) == b"".join(a.iter_content(v))
            compared += 1
    assert b.catalog.check() == []
    return compared


def pack_puts(proxy: FaultProxy) -> list[str]:
    """Paths of pack objects the endpoint stored (PUT answered 200), one entry per PUT."""
    return [path for method, path, status in proxy.forwarded if method == "PUT" and "/packs/" in path
            and status == 200]

