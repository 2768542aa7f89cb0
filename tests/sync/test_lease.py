"""The writer lease (vfs.sync.lease) through the uploader, against moto behind the fault proxy: one
writer at a time, racing takers never both win (with conditional PUTs honoured or stripped), and a
writer that lost the lease never makes the pointer name its state."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import trio

from tests.backend.faultproxy import FaultProxy
from tests.conftest import LogWatch
from tests.sync.conftest import assert_same_volume, backend_of, make_store, write
from vfs.backend.memory import MemoryBackend
from vfs.config import RemoteConfig
from vfs.errors import LeaseHeld, RemoteConflict
from vfs.repository import Repository
from vfs.sync import checkpoint, layout
from vfs.sync.clone import clone
from vfs.sync.lease import PREFIX, LocalLease, Timing, WriterLease, honours_conditional_put, read_claims, top_claims
from vfs.sync.uploader import Uploader

pytestmark = pytest.mark.s3
FAST = Timing(ttl=30.0, skew=1.0, settle=0.3)


@pytest.fixture
def remote(s3_bucket: str, proxy: FaultProxy) -> RemoteConfig:
    """Plain volumes only: these tests read and write lease and pointer objects directly (the CLI tests
    in test_lease_cli.py run on encrypted volumes too)."""
    return RemoteConfig(f"s3://{s3_bucket}/vol", proxy.url)


def uploader(repo: Repository, remote: RemoteConfig) -> Uploader:
    up = Uploader(repo, backend_of(remote))
    up.lease.timing = FAST
    return up


def sync(repo: Repository, remote: RemoteConfig) -> Uploader:
    up = uploader(repo, remote)
    trio.run(up.round)
    return up


def pointer(remote: RemoteConfig) -> dict[str, object]:
    with backend_of(remote) as b:
        p = checkpoint.read_pointer(b)
    assert p is not None
    return p


def test_the_probe_tells_an_endpoint_that_honours_conditional_puts_from_one_that_ignores_them(
    remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    with backend_of(remote) as b:
        assert honours_conditional_put(b)
        proxy.strip_conditional = True
        assert not honours_conditional_put(b)
        assert not list(b.list("lease-probe/"))  # the probe leaves nothing behind
    assert honours_conditional_put(MemoryBackend())  # the reference backend honours them


def test_a_second_writer_is_refused_naming_the_holder_and_pointer_carries_the_epoch(
    tmp_path: Path, remote: RemoteConfig,
) -> None:
    a = make_store(tmp_path / "a", remote)
    write(a, "f", b"one")
    sync(a, remote)
    assert pointer(remote)["epoch"] == 1
    with backend_of(remote) as b:
        b_store = clone(b, remote, tmp_path / "b")
    write(b_store, "g", b"from b")
    with pytest.raises(LeaseHeld) as refused:
        sync(b_store, remote)
    msg = str(refused.value)
    assert str(a.path) in msg and socket.gethostname() in msg and "vfs lease take" in msg
    assert "\n" not in msg
    # The holder goes on; the refused store published nothing and keeps its data.
    write(a, "f", b"two")
    sync(a, remote)
    assert pointer(remote)["epoch"] == 1 and pointer(remote)["seq"] == 2
    assert b_store.catalog.lookup(1, b"g") is not None  # type: ignore[arg-type]
    a.close()
    b_store.close()


@pytest.mark.slow
def test_after_release_a_clone_takes_over_and_continues_the_history(tmp_path: Path, remote: RemoteConfig) -> None:
    a = make_store(tmp_path / "a", remote)
    ino = write(a, "f", b"v1")
    write(a, "f", b"v2")
    a.catalog.create_snapshot("s1")
    up = sync(a, remote)
    with backend_of(remote) as b:
        copy = clone(b, remote, tmp_path / "b")
    up.release_lease()
    assert read_claims(up.backend)[-1].released
    n = len(copy.catalog.versions(ino))
    write(copy, "f", b"v3 from the clone")
    sync(copy, remote)
    assert pointer(remote)["epoch"] == 2
    # The volume's history goes on without a gap: f@N+1 follows f@N, the snapshot is still there.
    with backend_of(remote) as b:
        fresh = clone(b, remote, tmp_path / "fresh")
    versions = fresh.catalog.versions(ino)
    assert [v.vno for v in versions] == list(range(1, n + 2))
    assert b"".join(fresh.iter_content(versions[-1])) == b"v3 from the clone"
    assert [s.name for s in fresh.catalog.snapshots()] == ["s1"]
    assert_same_volume(copy, fresh)
    # The old writer is refused now (the clone holds the lease).
    write(a, "f", b"late")
    with pytest.raises(LeaseHeld, match=str(copy.path)):
        sync(a, remote)
    for r in (a, copy, fresh):
        r.close()


def test_a_writer_that_lost_the_lease_never_publishes_and_its_objects_never_clash(
    tmp_path: Path, remote: RemoteConfig, log_watch: LogWatch,
) -> None:
    log_watch.expect("by force from the store")
    log_watch.expect("no longer the writer")
    a = make_store(tmp_path / "a", remote)
    write(a, "f", b"base")
    old = sync(a, remote)
    with backend_of(remote) as b:
        copy = clone(b, remote, tmp_path / "b")
    taker = uploader(copy, remote)
    assert taker.lease.hold(lambda: checkpoint.check_head(taker.backend, taker.manifest), force=True)
    # The old writer does not know yet (its renewal is not due): its next checkpoint's pointer is refused.
    write(a, "f", b"stale")
    with pytest.raises(LeaseHeld, match="no longer the writer"):
        trio.run(old.round)
    assert pointer(remote)["seq"] == 1
    stale = [k for k in old.backend.list("catalog/") if k.startswith("catalog/0000000000000002-")]
    assert len(stale) == 1 and stale[0].startswith("catalog/0000000000000002-e1-")  # uploaded, never named
    write(copy, "f", b"new writer")
    trio.run(taker.round)
    p = pointer(remote)
    chain = p["chain"]
    assert isinstance(chain, list) and chain[-1].startswith("catalog/0000000000000002-e2-") and p["epoch"] == 2
    assert stale[0] in list(old.backend.list("catalog/"))  # the same seq, its own key: never overwritten
    with backend_of(remote) as b:
        fresh = clone(b, remote, tmp_path / "fresh")
    assert_same_volume(copy, fresh)
    st = LocalLease.load(a.path).status()
    assert st["writer"] is False and "no longer the writer" in st["lost"]
    assert old.status()["lease"]["lost"]
    for r in (a, copy, fresh):
        r.close()


def test_a_late_pointer_of_a_fenced_writer_is_replaced_by_the_holder(tmp_path: Path, remote: RemoteConfig,
                                                                     log_watch: LogWatch) -> None:
    """A pointer PUT in flight when the lease was taken lands afterwards: the holder's next checkpoint
    replaces it (its epoch is lower), where it would otherwise refuse an unseen head."""
    log_watch.expect("by force from the store")
    a = make_store(tmp_path / "a", remote)
    write(a, "f", b"base")
    sync(a, remote)
    with backend_of(remote) as b:
        copy = clone(b, remote, tmp_path / "b")
        taker = uploader(copy, remote)
        assert taker.lease.hold(lambda: checkpoint.check_head(b, taker.manifest), force=True)
        late = dict(pointer(remote), seq=7, db_hash="0" * 64)  # as the old writer (epoch 1) would have put it
        b.put(layout.LATEST_KEY, layout.wrap_json(late))
    write(copy, "f", b"new writer")
    trio.run(taker.round)
    assert pointer(remote)["epoch"] == 2
    with backend_of(remote) as b:
        fresh = clone(b, remote, tmp_path / "fresh")
    assert_same_volume(copy, fresh)
    for r in (a, copy, fresh):
        r.close()


def test_a_store_behind_the_volume_cannot_keep_the_lease_it_takes(tmp_path: Path, remote: RemoteConfig) -> None:
    a = make_store(tmp_path / "a", remote)
    write(a, "f", b"one")
    sync(a, remote)
    with backend_of(remote) as b:
        copy = clone(b, remote, tmp_path / "b")
    write(a, "f", b"two")
    up = sync(a, remote)  # the volume moves on without the clone
    up.release_lease()
    taker = uploader(copy, remote)
    with pytest.raises(RemoteConflict) as behind:
        taker.lease.hold(lambda: checkpoint.check_head(taker.backend, taker.manifest), take_expired=True)
    assert not isinstance(behind.value, LeaseHeld)
    top = top_claims(read_claims(taker.backend))
    assert len(top) == 1 and top[0].writer == up.lease.local.writer  # the take was undone
    a.close()
    copy.close()


@pytest.mark.slow
@pytest.mark.parametrize("strip", [False, True], ids=["conditional", "stripped"])
def test_racing_takers_never_both_hold_the_lease(tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
                                                 strip: bool) -> None:
    """Stores take a free lease at the same moment, round after round (the holder releases it between
    rounds): never do two take it, nor hold it after; where the endpoint ignores If-None-Match the
    write-then-verify protocol holds."""
    proxy.strip_conditional = strip
    stores = []
    for i in range(4):
        path = tmp_path / f"s{i}"
        (path / "sync").mkdir(parents=True)
        stores.append(path)
    leases = [WriterLease(p, backend_of(remote), "vol", timing=FAST) for p in stores]
    wins = 0
    for rnd in range(6):
        for lease in leases:
            lease.release()
        start = threading.Barrier(len(leases))
        won: list[WriterLease] = []

        def take(lease: WriterLease, start: threading.Barrier, won: list[WriterLease]) -> None:
            start.wait()
            try:
                lease.acquire()
                won.append(lease)
            except LeaseHeld:
                pass

        threads = [threading.Thread(target=take, args=(lease, start, won)) for lease in leases]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(won) <= 1, f"round {rnd}: {len(won)} stores hold the lease"
        holders = []
        for lease in leases:
            try:
                lease.check()
                holders.append(lease)
            except LeaseHeld:
                pass
            lease.local.lost = None  # the next round starts afresh
        assert len(holders) <= 1 and (not won or holders == won)
        wins += len(won)
    # Conditional PUTs make one racer win each round; without them racers may all back off, then retry.
    assert wins == 6 if not strip else wins >= 1
    assert proxy.stats["stripped"] if strip else not proxy.stats["stripped"]
    with backend_of(remote) as b:
        assert all(k.startswith(PREFIX) for k in b.list(PREFIX))
