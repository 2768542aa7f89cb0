"""The sync commands end to end through the real `vfs` CLI: init --remote, status, sync, clone, fetch,
a sync killed mid-upload, and a mount that stays responsive while the endpoint hangs."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.backend.faultproxy import FaultProxy
from tests.conftest import open_files_under
from tests.fuse.conftest import Mount, new_mount
from tests.s3_server import SECRET_KEY
from tests.sync.conftest import assert_same_volume, backend_of, init_flags, pack_puts
from vfs.config import RemoteConfig
from vfs.repository import Repository
from vfs.sync import layout
from vfs.types import ROOT_INO

pytestmark = pytest.mark.s3
VFS = [sys.executable, "-m", "vfs.cli.main"]


def vfs(*args: str | Path, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*VFS, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"vfs {' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    assert SECRET_KEY not in done.stdout + done.stderr
    return done


def remote_args(remote: RemoteConfig) -> tuple[str, ...]:
    return ("--remote", remote.url, "--endpoint-url", str(remote.endpoint_url))


def init(store: Path, remote: RemoteConfig) -> None:
    vfs("init", store, *remote_args(remote), *init_flags())


def write_files(store: Path, files: dict[str, bytes]) -> None:
    with Repository.open(store) as repo:
        for name, data in files.items():
            ino = repo.catalog.lookup(ROOT_INO, name.encode())
            if ino is None:
                ino = repo.catalog.create(ROOT_INO, name.encode(), 0o100644, 0, 0).ino
            repo.commit_bytes(ino, data)


def status(store: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads(vfs("status", "--store", store, "--json").stdout)
    return result


def test_init_sync_status_clone_cat_fetch(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    init(store, remote)
    files = {f"f{i}": os.urandom(100_000 * (i + 1)) for i in range(6)}
    write_files(store, files)
    write_files(store, {"f0": b"new content of f0"})
    vfs("snapshot", "create", "snap", "--store", store)
    st = status(store)
    assert st["backlog_objects"] and st["last_sync_ns"] is None and st["mounted"] is False
    vfs("sync", "--wait", "--store", store)
    st = status(store)
    assert st["backlog_objects"] == 0 and st["backlog_bytes"] == 0 and st["last_sync_ns"]
    copy = tmp_path / "b"
    vfs("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    old = subprocess.run([*VFS, "cat", "--store", str(copy), "f0@1"], capture_output=True, timeout=60)
    assert old.returncode == 0 and old.stdout == files["f0"]
    with Repository.open(store, lock=False) as a, Repository.open(copy, lock=False) as b:
        assert_same_volume(a, b)
    lazy = tmp_path / "c"
    vfs("clone", remote.url, lazy, "--lazy", "--endpoint-url", str(remote.endpoint_url))
    assert not list((lazy / "packs").glob("*/*.pack"))
    st = status(lazy)
    assert st["backlog_objects"] == 0 and st["remote"] == remote.url, st
    done = subprocess.run([*VFS, "cat", "--store", str(lazy), "f3"], capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout == files["f3"]
    assert "fetched" in vfs("fetch", "--store", lazy, "/").stdout
    with Repository.open(store, lock=False) as a, Repository.open(lazy, lock=False) as b:
        assert b.fetcher is None  # opened without a fetcher: everything must be local now
        assert_same_volume(a, b)


def test_sync_fails_clearly_when_the_endpoint_is_down(tmp_path: Path, remote: RemoteConfig,
                                                      proxy: FaultProxy) -> None:
    store = tmp_path / "a"
    init(store, remote)
    write_files(store, {"f": b"data"})
    proxy.status = 503
    t0 = time.monotonic()
    done = vfs("sync", "--wait", "--timeout", "3", "--store", store, check=False)
    assert done.returncode == 5, done.stderr
    assert "did not finish within 3s" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - t0 < 30
    assert status(store)["backlog_objects"]


def test_killed_sync_resumes_without_uploading_anything_twice(tmp_path: Path, remote: RemoteConfig,
                                                              proxy: FaultProxy) -> None:
    store = tmp_path / "a"
    vfs("init", store, "--remote", remote.url, "--endpoint-url", str(remote.endpoint_url), *init_flags())
    # Small packs, so that there are many uploads to interrupt.
    with Repository.open(store) as repo:
        cfg = json.loads(repo.catalog.meta("config"))
    assert cfg["pack_target"] > 0
    files = {f"f{i:03d}": os.urandom(400_000) for i in range(60)}  # ~24 MiB: two packs at least
    write_files(store, files)
    proxy.rate, proxy.kinds, proxy.delay = 1.0, ("delay",), (0.4, 0.6)
    proc = subprocess.Popen([*VFS, "sync", "--wait", "--store", str(store)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not pack_puts(proxy) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # PUTs the proxy had already read whole still reach the endpoint after their delay: let them land.
    # Then the resumed sync must send nothing the bucket already had whole, and nothing twice.
    proxy.wait_idle()
    before = pack_puts(proxy)
    proxy.rate = 0.0
    vfs("sync", "--wait", "--store", store)
    resumed = collections.Counter(pack_puts(proxy)[len(before):])
    assert before  # the kill came after a pack had landed (sometimes after all of them)
    assert not set(resumed) & set(before), (before, resumed)
    assert max(resumed.values(), default=1) == 1, resumed
    copy = tmp_path / "b"
    vfs("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    with Repository.open(store, lock=False) as a, Repository.open(copy, lock=False) as b:
        assert_same_volume(a, b)


@pytest.mark.fuse
@pytest.mark.slow
def test_mount_stays_responsive_while_uploads_hang_and_backlog_drains_after(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    init(store, remote)
    proxy.rate, proxy.kinds, proxy.stall = 1.0, ("stall",), 20.0  # every request hangs
    m = Mount(store, mnt)
    m.start()
    try:
        data = os.urandom(1 << 20)
        for i in range(40):  # 40 MiB: packs seal and their uploads hang
            (mnt / f"f{i}").write_bytes(data[i:] + data[:i])
        time.sleep(3)  # the uploader is now stuck in PUTs
        t0 = time.monotonic()
        for _ in range(20):
            assert len(os.listdir(mnt)) >= 40
            assert (mnt / "f3").read_bytes()[:10] == (data[3:] + data[:3])[:10]
            (mnt / "small").write_bytes(b"still writable")
        elapsed = time.monotonic() - t0
        assert elapsed < 5, f"mount answered slowly while the endpoint hung: {elapsed:.1f}s"
        st = json.loads(vfs("status", "--mount", mnt, "--json").stdout)
        assert st["mounted"] and st["backlog_objects"]
        proxy.rate = 0.0
        vfs("sync", "--wait", "--timeout", "170", "--mount", mnt, timeout=200)
        st = json.loads(vfs("status", "--mount", mnt, "--json").stdout)
        assert st["backlog_objects"] == 0, st
        m.stop()
    finally:
        m.cleanup()
    copy = tmp_path / "copy"
    vfs("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    with Repository.open(store, lock=False) as a, Repository.open(copy, lock=False) as b:
        assert_same_volume(a, b)


@pytest.mark.fuse
@pytest.mark.slow
def test_daemon_killed_mid_upload_then_mounted_again_finishes_with_nothing_sent_twice(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    init(store, remote)
    proxy.rate, proxy.kinds, proxy.delay = 1.0, ("delay",), (0.5, 1.0)  # slow uploads, to be killed amid
    m = Mount(store, mnt)
    m.start()
    try:
        for i in range(48):  # 48 MiB: several sealed packs
            (mnt / f"f{i}").write_bytes(os.urandom(1 << 20))
        vfs("sync", "--mount", mnt)  # a round now (without waiting for it)
        deadline = time.monotonic() + 60
        while not pack_puts(proxy) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pack_puts(proxy), "no upload started"
        m.kill9()
        time.sleep(1.5)  # requests the proxy holds still land (see the test above)
        proxy.rate = 0.0
        m.start()  # recovers what the killed daemon left, resumes the backlog
        vfs("sync", "--wait", "--timeout", "170", "--mount", mnt, timeout=200)
        assert json.loads(vfs("status", "--mount", mnt, "--json").stdout)["backlog_objects"] == 0
        m.stop()
    finally:
        m.cleanup()
    puts = collections.Counter(pack_puts(proxy))
    assert puts and max(puts.values()) == 1, puts
    copy = tmp_path / "copy"
    vfs("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    with Repository.open(store, lock=False) as a, Repository.open(copy, lock=False) as b:
        assert_same_volume(a, b)
        assert len([e for e in b.catalog.tree(b.catalog.head().no) if e.hash is not None]) == 48


@pytest.mark.fuse
@pytest.mark.slow
def test_umount_while_uploads_hang_keeps_and_reports_the_backlog(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    init(store, remote)
    proxy.rate, proxy.kinds, proxy.stall = 1.0, ("stall",), 60.0
    m = Mount(store, mnt)
    m.start()
    try:
        for i in range(20):
            (mnt / f"f{i}").write_bytes(os.urandom(1 << 20))
        time.sleep(3)  # a sealed pack's PUT now hangs
        t0 = time.monotonic()
        m.stop()
        assert time.monotonic() - t0 < 30, "umount waited for a hung upload"
    finally:
        m.cleanup()
    assert "not yet on the remote" in (store / "vfs.log").read_text()
    assert status(store)["backlog_objects"]
    proxy.rate = 0.0
    vfs("sync", "--wait", "--store", store)
    assert status(store)["backlog_objects"] == 0
    copy = tmp_path / "copy"
    vfs("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    with Repository.open(store, lock=False) as a, Repository.open(copy, lock=False) as b:
        assert_same_volume(a, b)


@pytest.mark.fuse
def test_lazily_cloned_volume_mounts_and_reads_fetch_entries(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    init(store, remote)
    files = {f"f{i}": os.urandom(300_000) for i in range(5)}
    write_files(store, files)
    vfs("sync", "--wait", "--store", store)
    lazy, mnt = tmp_path / "lazy", tmp_path / "mnt"
    mnt.mkdir()
    vfs("clone", remote.url, lazy, "--lazy", "--endpoint-url", str(remote.endpoint_url))
    m = Mount(lazy, mnt)
    m.start()
    try:
        for name, data in files.items():
            assert (mnt / name).read_bytes() == data
        m.stop()
    finally:
        m.cleanup()
    # Read entry by entry (vfs.store.partial): partial packs, never a file taken for a whole pack.
    assert list((lazy / "packs").glob("*/*.partial")) and not list((lazy / "packs").glob("*/*.pack"))


# -- a second store on the same prefix (issue 9, item 1) -----------------------------------------
def _content(store: Path, name: str) -> bytes | None:
    """The latest content of /name in an unmounted store, or None if it has no such file."""
    done = subprocess.run([*VFS, "cat", "--store", str(store), name], capture_output=True, timeout=60)
    return done.stdout if done.returncode == 0 else None


def _refused(done: subprocess.CompletedProcess[str], other: Path | None) -> None:
    """`done` is a refusal to publish over another store's head: exit 6, one line naming `other` (None:
    another encrypted volume's, whose writer only its key can read)."""
    assert done.returncode == 6, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfs: error: "), done.stderr
    if other is not None:
        assert str(other) in lines[0] and os.uname().nodename in lines[0], lines[0]


def _shows_conflict(st: dict[str, object], other: Path | None) -> None:
    assert st["conflict"] is True, st
    assert other is None or str(other) in str(st["error"]), st


def _origin_intact(tmp_path: Path, remote: RemoteConfig, files: dict[str, bytes], absent: str) -> None:
    """A fresh clone of the remote holds `files` and not `absent`."""
    fresh = tmp_path / "fresh"
    vfs("clone", remote.url, fresh, "--endpoint-url", str(remote.endpoint_url))
    for name, data in files.items():
        assert _content(fresh, name) == data, name
    assert _content(fresh, absent) is None


@pytest.mark.fuse
def test_a_mounted_clone_never_publishes_over_a_checkpoint_it_has_not_seen(tmp_path: Path,
                                                                            remote: RemoteConfig) -> None:
    origin, copy, mnt = tmp_path / "origin", tmp_path / "copy", tmp_path / "mnt"
    mnt.mkdir()
    init(origin, remote)
    write_files(origin, {"base": b"in both"})
    vfs("sync", "--wait", "--store", origin)
    vfs("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    m = Mount(copy, mnt)
    m.start()
    try:
        # The origin moves the remote's head; then the clone, which has not seen it, writes and syncs.
        write_files(origin, {"from-origin": b"written by the origin"})
        vfs("sync", "--wait", "--store", origin)
        vfs("lease", "release", origin)  # the lease is free: the head check alone stops the clone
        (mnt / "from-clone").write_bytes(b"written in the clone")
        _refused(vfs("sync", "--wait", "--timeout", "120", "--mount", mnt, check=False), origin)
        _shows_conflict(json.loads(vfs("status", "--mount", mnt, "--json").stdout), origin)
        assert "another store" in vfs("status", "--mount", mnt).stdout
        _refused(vfs("sync", "--mount", mnt, check=False), origin)  # stopped: refused at once
        assert (mnt / "from-clone").read_bytes() == b"written in the clone"
        m.stop()
    finally:
        m.cleanup()
    _shows_conflict(status(copy), origin)  # unmounted, from what the daemon recorded
    _refused(vfs("sync", "--wait", "--store", copy, check=False), origin)
    assert _content(copy, "from-clone") == b"written in the clone"
    _origin_intact(tmp_path, remote, {"base": b"in both", "from-origin": b"written by the origin"}, "from-clone")


def test_the_origin_never_publishes_over_a_checkpoint_a_clone_made(tmp_path: Path, remote: RemoteConfig) -> None:
    origin, copy = tmp_path / "origin", tmp_path / "copy"
    init(origin, remote)
    write_files(origin, {"base": b"in both"})
    vfs("sync", "--wait", "--store", origin)
    vfs("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    write_files(copy, {"from-clone": b"written in the clone"})
    write_files(origin, {"from-origin": b"written by the origin"})
    vfs("lease", "release", origin)  # handed over: the writer lease no longer stops the clone
    vfs("sync", "--wait", "--store", copy)  # the clone saw the head it publishes over: its own origin's
    vfs("lease", "release", copy)  # the lease is free: the head check alone stops the origin
    _refused(vfs("sync", "--wait", "--store", origin, check=False), copy)
    _shows_conflict(status(origin), copy)
    assert "another store" in vfs("status", "--store", origin).stdout
    assert _content(origin, "from-origin") == b"written by the origin"
    _origin_intact(tmp_path, remote, {"base": b"in both", "from-clone": b"written in the clone"}, "from-origin")


def test_a_fresh_store_never_publishes_over_another_volume(tmp_path: Path, remote: RemoteConfig) -> None:
    origin, other = tmp_path / "origin", tmp_path / "other"
    init(origin, remote)
    write_files(origin, {"base": b"the origin's"})
    vfs("sync", "--wait", "--store", origin)
    init(other, remote)
    write_files(other, {"base": b"the fresh store's", "mine": b"only here"})
    named = None if init_flags() else origin  # another encrypted volume's writer cannot be read
    _refused(vfs("sync", "--wait", "--store", other, check=False), named)
    _shows_conflict(status(other), named)
    assert _content(other, "mine") == b"only here"
    _origin_intact(tmp_path, remote, {"base": b"the origin's"}, "mine")
    vfs("sync", "--wait", "--store", origin)  # the origin goes on syncing


# -- the current failure in status (issue 9, item 6) ---------------------------------------------
def _failing(st: dict[str, object]) -> bool:
    return bool(st.get("error") and st.get("error_since_ns") and st.get("error_attempts"))


def _wait_status(store_args: tuple[str, ...], until: object) -> dict[str, object]:
    deadline = time.monotonic() + 240  # a bound only: a frozen endpoint fails after the 60 s read timeout
    while True:
        st: dict[str, object] = json.loads(vfs("status", *store_args, "--json").stdout)
        if until(st):  # type: ignore[operator]
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.2)


def _shows_failure(store_args: tuple[str, ...], what: str = "ServiceUnavailable") -> None:
    st = _wait_status(store_args, _failing)
    assert what in str(st["error"]), st
    text = vfs("status", *store_args).stdout
    assert "failing since" in text and "failed attempt" in text, text


@pytest.mark.fuse
def test_status_shows_a_failing_endpoint_while_it_lasts_and_clears_after(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    with new_mount(tmp_path, *remote_args(remote)) as m:
        store, mnt = m.store, m.path
        proxy.status = 503
        (mnt / "f").write_bytes(os.urandom(100_000))
        vfs("sync", "--mount", mnt)  # a round now, which fails (and is retried)
        _shows_failure(("--mount", str(mnt)))
        done = vfs("sync", "--wait", "--timeout", "2", "--mount", mnt, check=False)
        assert done.returncode == 5 and "ServiceUnavailable" in done.stderr, done.stderr
        proxy.status = None
        vfs("sync", "--wait", "--timeout", "170", "--mount", mnt, timeout=200)
        st = _wait_status(("--mount", str(mnt)), lambda st: not st["error"])
        assert st["error_since_ns"] is None and st["backlog_objects"] == 0, st
        m.stop()
    # Unmounted: what the last `vfs sync` met, until one succeeds.
    write_files(store, {"g": b"more"})
    proxy.status = 503
    done = vfs("sync", "--wait", "--timeout", "10", "--store", store, check=False)
    assert done.returncode == 5 and "ServiceUnavailable" in done.stderr, done.stderr
    _shows_failure(("--store", str(store)))
    proxy.status = None
    vfs("sync", "--wait", "--store", store)
    st = status(store)
    assert not st["error"] and st["error_since_ns"] is None, st


@pytest.mark.fuse
@pytest.mark.slow
def test_status_shows_a_frozen_endpoint_once_a_request_times_out(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,
) -> None:
    with new_mount(tmp_path, *remote_args(remote)) as m:
        mnt = m.path
        proxy.rate, proxy.kinds, proxy.stall = 1.0, ("stall",), 300.0  # beyond the daemon's read timeout
        (mnt / "f").write_bytes(os.urandom(100_000))
        vfs("sync", "--mount", mnt)
        # Before the read timeout fails it, the request that gets no answer is shown as waiting.
        st = _wait_status(("--mount", str(mnt)), lambda st: "still waiting for an answer" in str(st["error"]))
        assert st["error_attempts"] == 0 and st["error_since_ns"], st
        _shows_failure(("--mount", str(mnt)), "timeout")
        proxy.rate = 0.0
        vfs("sync", "--wait", "--timeout", "250", "--mount", mnt, timeout=280)
        st = _wait_status(("--mount", str(mnt)), lambda st: not st["error"])
        assert st["backlog_objects"] == 0, st
        m.stop()


def test_a_damaged_manifest_stops_sync_in_one_line_and_publishes_nothing(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    init(store, remote)
    write_files(store, {"f": b"first"})
    vfs("sync", "--wait", "--store", store)
    backend = backend_of(remote)
    pointer = backend.get(layout.LATEST_KEY)
    write_files(store, {"f": b"second"})
    (store / "sync" / "checkpoint.json").write_text('{"seq": 1, "from_a_newer_vfs": true}')
    for args in (("status", "--store", store), ("sync", "--wait", "--timeout", "20", "--store", store)):
        done = vfs(*args, check=False)
        assert done.returncode == 3, done.stderr
        assert done.stderr.count("\n") == 1 and "checkpoint.json is damaged or from a newer vfs" in done.stderr
        assert "Traceback" not in done.stderr
    assert backend.get(layout.LATEST_KEY) == pointer
    backend.close()


@pytest.mark.fuse
@pytest.mark.slow
def test_upload_rounds_leave_no_sealed_pack_open_in_the_daemon(tmp_path: Path, remote: RemoteConfig) -> None:
    """Each round seals the open pack for upload: the daemon must not keep the sealed packs' files open
    (one more descriptor each round, and a pack gc deletes would keep its blocks allocated)."""
    with new_mount(tmp_path, *remote_args(remote)) as m:
        packs = m.store / "packs"
        for i in range(8):
            (m.path / f"f{i}").write_bytes(os.urandom(50_000))
            vfs("sync", "--wait", "--mount", m.path)
        files = sorted(str(p) for p in packs.glob("*/*.pack"))
        assert len(files) >= 9  # 8 sealed, and the open one
        assert open_files_under(packs, m.pid, settle_to=files[-1:]) == files[-1:]
