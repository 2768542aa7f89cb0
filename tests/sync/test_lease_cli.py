"""The writer lease end to end through the real `vfs` CLI and mounts, two or more stores on one machine
against moto: a second writer refused with the holder named, release and takeover continuing the
history, takeover after a writer is killed (SIGKILL) and its lease expires, and a forced takeover while
the old writer is mid-upload. Lease timings are made short through VFS_LEASE_* (the daemons inherit them).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.backend.faultproxy import FaultProxy
from tests.fuse.conftest import Mount
from tests.sync.conftest import assert_same_volume, pack_puts
from tests.sync.test_cli import VFS, init, status, vfs, write_files
from vfs.config import RemoteConfig
from vfs.repository import Repository
from vfs.types import ROOT_INO

pytestmark = pytest.mark.s3


@pytest.fixture(autouse=True)
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFS_LEASE_TTL", "60")
    monkeypatch.setenv("VFS_LEASE_SKEW", "0.5")
    monkeypatch.setenv("VFS_LEASE_SETTLE", "0.2")


def clone(remote: RemoteConfig, dest: Path) -> None:
    vfs("clone", remote.url, dest, "--endpoint-url", str(remote.endpoint_url))


def one_line(done: subprocess.CompletedProcess[str], code: int, *names: object) -> str:
    """`done` failed with exit `code` in one line `vfs: error: ...` that names each of `names`."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfs: error: ") and "Traceback" not in done.stderr, done.stderr
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def content(store: Path, name: str) -> bytes | None:
    done = subprocess.run([*VFS, "cat", "--store", str(store), name], capture_output=True, timeout=60)
    return done.stdout if done.returncode == 0 else None


def lease_status(store: Path) -> dict[str, object]:
    answer: dict[str, object] = json.loads(vfs("lease", "status", store, "--json").stdout)
    return answer


def writer(st: dict[str, object]) -> object:
    lease = st["lease"]
    assert isinstance(lease, dict)
    return lease["writer"]


def wait_for_stalled_upload(proxy: FaultProxy) -> None:
    """Until a pack PUT has reached the proxy, which holds it (`stall`) before forwarding it."""
    deadline = time.monotonic() + 60
    while not proxy.stats["stall"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.stats["stall"], "no upload started"


def fsck_remote_clean(store: Path) -> None:
    vfs("fsck", "--remote", store)  # exit 0: no damage


def fresh_equals(tmp_path: Path, remote: RemoteConfig, store: Path, name: str) -> Path:
    fresh = tmp_path / name
    clone(remote, fresh)
    with Repository.open(store, lock=False) as a, Repository.open(fresh, lock=False) as b:
        assert_same_volume(a, b)
    return fresh


def assert_no_content(store: Path, names: list[str]) -> None:
    """The old writer's content was not published; its files' creations (which need no pack) may have
    been, before the take."""
    with Repository.open(store, lock=False) as r:
        found = [r.catalog.lookup(ROOT_INO, name.encode()) for name in names]
        assert all(r.catalog.version_at(ino) is None for ino in found if ino is not None)


def test_second_writer_refused_then_release_and_take_continue_the_history(tmp_path: Path,
                                                                          remote: RemoteConfig) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    init(a, remote)
    write_files(a, {"f": b"v1"})
    write_files(a, {"f": b"v2"})
    vfs("snapshot", "create", "s1", "--store", a)
    vfs("sync", "--wait", "--store", a)
    assert writer(status(a)) is True and "writer:      yes" in vfs("status", "--store", a).stdout
    clone(remote, b)
    write_files(b, {"g": b"from b"})
    one_line(vfs("sync", "--wait", "--store", b, check=False), 8, a, os.uname().nodename, "vfs lease take")
    one_line(vfs("lease", "take", b, check=False), 8, a, "--force")  # live: only --force takes it now
    held = lease_status(b)
    assert held["state"] == "held" and held["holder"]["store"] == str(a)  # type: ignore[index]
    assert held["this_store"]["writer"] is False  # type: ignore[index]
    vfs("lease", "release", a)
    assert lease_status(a)["state"] == "released"
    vfs("lease", "take", b)
    write_files(b, {"f": b"v3 from b"})
    vfs("sync", "--wait", "--store", b)
    assert writer(status(b)) is True and lease_status(b)["epoch"] == 2
    # f@3 follows f@2; the snapshot and all history are the volume's, in one line of versions.
    fresh = fresh_equals(tmp_path, remote, b, "fresh")
    assert content(fresh, "f@1") == b"v1" and content(fresh, "f@2") == b"v2" and content(fresh, "f@3") == b"v3 from b"
    assert content(fresh, "f@s1") == b"v2" and content(fresh, "g") == b"from b"
    # The old writer is refused now, naming the new one; its own data stays.
    write_files(a, {"late": b"only in a"})
    one_line(vfs("sync", "--wait", "--store", a, check=False), 8, b)
    assert content(a, "late") == b"only in a"
    fsck_remote_clean(b)


@pytest.mark.fuse
@pytest.mark.slow
def test_writer_killed_then_lease_expires_taken_over_and_old_writer_refused(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VFS_LEASE_TTL", "12")
    a, b, mnt = tmp_path / "a", tmp_path / "b", tmp_path / "mnt"
    mnt.mkdir()
    init(a, remote)
    write_files(a, {"base": b"in both"})
    vfs("sync", "--wait", "--store", a)
    # Pack uploads hang (the lease and catalog requests do not): the writer is killed amid them.
    proxy.rate, proxy.kinds, proxy.stall, proxy.fault_paths = 1.0, ("stall",), 8.0, "/packs/"
    m = Mount(a, mnt)
    m.start()
    files = {f"f{i}": os.urandom(1 << 20) for i in range(40)}
    try:
        # The files exist (empty) and the mount's first round is done before b clones: b then holds a's
        # newest checkpoint, and a publishes nothing more (every later change is content, whose
        # checkpoint needs packs, which hang). A file created after the clone could be published in a
        # checkpoint of its own before its content, and b would rightly be refused as behind.
        for name in files:
            (mnt / name).touch()
        vfs("sync", "--wait", "--mount", mnt)
        clone(remote, b)
        for name, data in files.items():
            (mnt / name).write_bytes(data)
        vfs("sync", "--mount", mnt)  # a round now, without waiting
        wait_for_stalled_upload(proxy)
        m.kill9()
    finally:
        m.cleanup()
    proxy.rate = 0.0
    # The dead writer's lease is still live for a while: a take without --force is refused.
    one_line(vfs("lease", "take", b, check=False), 8, a)
    # The killed writer's requests in flight end (a stalled pack PUT may land, unreferenced, or not).
    proxy.wait_idle(timeout=60)
    deadline = time.monotonic() + 90
    while True:  # until it expires (12 s after the daemon's last renewal, plus the skew margin)
        done = vfs("lease", "take", b, check=False)
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        one_line(done, 8, a)
    assert done.returncode == 0, done.stderr
    write_files(b, {"from-b": b"the new writer's"})
    vfs("sync", "--wait", "--store", b)
    # The old writer comes back: its sync is refused, it says it is not the writer, its data is all there.
    one_line(vfs("sync", "--wait", "--store", a, check=False), 8, b)
    st = status(a)
    assert writer(st) is False and "no longer the writer" in str(st["lease"]["lost"])  # type: ignore[index]
    assert "writer:      no: this store is no longer the writer" in vfs("status", "--store", a).stdout
    for name, data in files.items():
        assert content(a, name) == data, name
    fsck_remote_clean(b)
    fresh = fresh_equals(tmp_path, remote, b, "fresh")
    assert content(fresh, "from-b") == b"the new writer's"
    assert_no_content(fresh, [f"f{i}" for i in range(40)])


@pytest.mark.fuse
@pytest.mark.slow
def test_forced_takeover_while_the_old_writer_uploads_damages_nothing(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    a, b, mnt = tmp_path / "a", tmp_path / "b", tmp_path / "mnt"
    mnt.mkdir()
    init(a, remote)
    write_files(a, {"base": b"in both"})
    vfs("sync", "--wait", "--store", a)
    # Pack uploads hang long enough for the take to happen amid them (the lease and catalog requests do not).
    proxy.rate, proxy.kinds, proxy.stall, proxy.fault_paths = 1.0, ("stall",), 30.0, "/packs/"
    m = Mount(a, mnt)
    m.start()
    try:
        # As in the SIGKILL test: the files exist before b clones, so a publishes nothing after the clone.
        for i in range(40):
            (mnt / f"f{i}").touch()
        vfs("sync", "--wait", "--mount", mnt)
        clone(remote, b)
        synced = len(pack_puts(proxy))
        for i in range(40):
            (mnt / f"f{i}").write_bytes(os.urandom(1 << 20))
        vfs("sync", "--mount", mnt)
        wait_for_stalled_upload(proxy)
        taken = vfs("lease", "take", "--force", b)  # while the old writer is mid-upload
        assert "warning" in taken.stderr and "by force" in taken.stderr and len(pack_puts(proxy)) == synced
        proxy.rate = 0.0  # the old writer's uploads in flight land later; the new writer's go through
        write_files(b, {"from-b": b"the new writer's"})
        vfs("sync", "--wait", "--store", b)
        # The old writer finds out (at its pointer's PUT, or its renewal) and stops for good.
        one_line(vfs("sync", "--wait", "--quiet", "--timeout", "170", "--mount", mnt, check=False, timeout=200), 8, b)
        st = status(a)
        assert st["conflict"] is True and writer(st) is False
        assert "no longer the writer" in vfs("status", "--mount", mnt).stdout
        # Its mount goes on working locally.
        (mnt / "after").write_bytes(b"written after losing the lease")
        assert (mnt / "after").read_bytes() == b"written after losing the lease"
        m.stop()  # a clean unmount releases nothing it no longer holds
    finally:
        m.cleanup()
    proxy.rate = 0.0
    assert lease_status(b)["this_store"]["writer"] is True  # type: ignore[index]
    fsck_remote_clean(b)
    fresh = fresh_equals(tmp_path, remote, b, "fresh")
    assert content(fresh, "from-b") == b"the new writer's"
    assert_no_content(fresh, [f"f{i}" for i in range(40)])
    assert content(a, "after") == b"written after losing the lease"
    with Repository.open(a, lock=False) as repo:
        assert len([e for e in repo.catalog.tree(repo.catalog.head().no) if e.hash is not None]) == 42
        assert repo.catalog.lookup(ROOT_INO, b"f39") is not None


@pytest.mark.fuse
def test_a_clean_umount_hands_the_lease_over_at_once(tmp_path: Path, remote: RemoteConfig) -> None:
    a, b, mnt = tmp_path / "a", tmp_path / "b", tmp_path / "mnt"
    mnt.mkdir()
    init(a, remote)
    write_files(a, {"base": b"in both"})
    vfs("sync", "--wait", "--store", a)
    clone(remote, b)
    vfs("lease", "release", a)
    m = Mount(a, mnt)
    m.start()
    try:
        (mnt / "more").write_bytes(b"from the mount")
        vfs("sync", "--wait", "--mount", mnt)
        assert writer(status(a)) is True and lease_status(a)["state"] == "held"
        one_line(vfs("sync", "--wait", "--store", b, check=False), 8, a)
        one_line(vfs("lease", "release", a, check=False), 4)  # mounted: unmounting releases it
        assert lease_status(a)["state"] == "held"
        m.stop()
    finally:
        m.cleanup()
    assert lease_status(a)["state"] == "released"
    clone(remote, tmp_path / "c")  # b is behind now (the mount synced "more"): a fresh clone takes over
    vfs("lease", "take", tmp_path / "c")
    write_files(tmp_path / "c", {"from-c": b"c"})
    vfs("sync", "--wait", "--store", tmp_path / "c")
    fsck_remote_clean(tmp_path / "c")
    vfs("init", tmp_path / "local")
    one_line(vfs("lease", "status", tmp_path / "local", check=False), 2, "has no remote")
