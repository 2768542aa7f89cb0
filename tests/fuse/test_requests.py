"""What the kernel asks of the daemon: the request counters (VFS_FUSE_STATS) benchmarks read, and the
security.capability probe the kernel sends before every write(2), answered without a query."""

from __future__ import annotations

import errno
import json
import os
import random
import struct
from pathlib import Path

import pytest

from tests.fuse.conftest import new_mount, vfs
from vfs.fuse.kernel import READ_AHEAD, WRITE_SHARE, bdi_dir, tune_bdi

pytestmark = pytest.mark.fuse

# A version 2 file capability blob (struct vfs_cap_data): CAP_NET_BIND_SERVICE permitted.
CAPABILITY = struct.pack("<IIIII", 0x02000000, 1 << 10, 0, 0, 0)


def test_request_counts_are_written_when_the_mount_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = tmp_path / "requests.json"
    monkeypatch.setenv("VFS_FUSE_STATS", str(stats))  # the daemon inherits it from `vfs mount`
    with new_mount(tmp_path) as m:
        for i in range(20):
            (m.path / f"f{i}").write_bytes(b"x" * 4096)
        for i in range(20):
            os.stat(m.path / f"f{i}")
        m.stop()
    counts = json.loads(stats.read_text())
    assert counts["create"]["calls"] == 20
    assert counts["write"]["calls"] >= 20
    assert counts["release"]["calls"] >= 20
    # The kernel asks for security.capability before each write(2) (Linux's file_remove_privs).
    assert counts["getxattr"]["calls"] >= 20
    assert all(c["seconds"] >= 0 for c in counts.values())


def test_no_counters_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VFS_FUSE_STATS", raising=False)
    with new_mount(tmp_path) as m:
        (m.path / "f").write_bytes(b"x")
        m.stop()
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.skipif(os.geteuid() != 0, reason="setting a file capability needs CAP_SETFCAP")
def test_a_file_capability_is_seen_and_dropped_by_the_next_write(tmp_path: Path) -> None:
    """The fast 'no such attribute' must not hide a capability that was set: the kernel removes it when
    the file is written (it asks for it first), as on any filesystem."""
    with new_mount(tmp_path) as m:
        f = m.path / "tool"
        f.write_bytes(b"#!/bin/sh\n")  # asked before any capability exists: answered ENODATA
        os.setxattr(f, "security.capability", CAPABILITY)
        assert os.getxattr(f, "security.capability") == CAPABILITY
        other = m.path / "other"
        other.write_bytes(b"no capability here\n")
        with pytest.raises(OSError) as e:
            os.getxattr(other, "security.capability")
        assert e.value.errno == errno.ENODATA
        with f.open("ab") as out:
            out.write(b"exit 0\n")
        with pytest.raises(OSError) as e:
            os.getxattr(f, "security.capability")
        assert e.value.errno == errno.ENODATA
        m.stop()
        m.start()
        with pytest.raises(OSError) as e:
            os.getxattr(f, "security.capability")
        assert e.value.errno == errno.ENODATA


def test_a_missing_name_is_asked_once_and_shows_at_once_however_it_is_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kernel remembers a missing name (a negative entry, as long as a name that exists), so asking
    again costs no request; every way of adding a name makes it show at once: the kernel's own create,
    and restore and put through the daemon, which have the kernel forget the names they add. A name with
    '@' is never remembered as missing: f@2 resolves once f has a second version."""
    stats = tmp_path / "requests.json"
    monkeypatch.setenv("VFS_FUSE_STATS", str(stats))
    local = tmp_path / "local.txt"
    local.write_text("put here")
    with new_mount(tmp_path) as m:
        (m.path / "d").mkdir()
        names = [m.path / "d" / f"missing{i}" for i in range(100)]
        for _ in range(3):
            assert not any(p.exists() for p in names)
        m.stop()
        counts = json.loads(stats.read_text())
        assert 100 <= counts["lookup"]["calls"] < 150, counts["lookup"]  # not 300
        m.start()

        for p in names[:3]:
            assert not p.exists()
        names[0].write_text("made by the kernel")
        assert names[0].read_text() == "made by the kernel"

        vfs("put", str(local), str(names[1]))
        assert names[1].read_text() == "put here"

        gone = m.path / "gone.txt"
        gone.write_text("v1")
        vfs("snapshot", "create", "--mount", str(m.path), "before")
        gone.unlink()
        assert not gone.exists()
        vfs("restore", f"{gone}@before")
        assert gone.read_text() == "v1"

        f = m.path / "f.txt"
        f.write_text("one")
        assert not (m.path / "f.txt@2").exists()
        f.write_text("two")
        assert (m.path / "f.txt@2").read_text() == "two"
        m.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the backing device's limits are root's to set")
def test_random_writes_wait_in_the_kernel_and_reach_the_daemon_in_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mount's backing device lets the kernel hold 5-20% of the dirty-page limit, not FUSE's 0-1%
    (with 24 GiB, 1% is about 48 MB, and a fresh mount gets next to none of it): 64 MiB written 4 KiB at a
    time in random order reach the daemon at the fsync, in runs, instead of a page or two per WRITE request
    as the writer goes. The content is whole."""
    stats = tmp_path / "requests.json"
    monkeypatch.setenv("VFS_FUSE_STATS", str(stats))
    size, page = 64 * 2**20, 4096
    blocks = [os.urandom(page) for _ in range(64)]
    order = list(range(size // page))
    random.Random(7).shuffle(order)
    with new_mount(tmp_path) as m:
        bdi = bdi_dir(m.path)
        for name, value in (READ_AHEAD | WRITE_SHARE).items():
            assert (bdi / name).read_text().strip() == value, name
        # What the minimum share leaves the mount on this machine (max_bytes is the maximum's).
        held = int((bdi / "max_bytes").read_text()) * int(WRITE_SHARE["min_ratio"]) // int(WRITE_SHARE["max_ratio"])
        if held < 2 * size:
            pytest.skip(f"this machine's dirty-page limit leaves the mount {held} bytes")
        fd = os.open(m.path / "random", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for n in order:
                os.pwrite(fd, blocks[n % len(blocks)], n * page)
            os.fsync(fd)
        finally:
            os.close(fd)
        m.stop()
        counts = json.loads(stats.read_text())
        assert counts["write"]["calls"] < len(order) // 20, counts["write"]  # no minimum share: 8,059 of 16,384
        m.start()
        with (m.path / "random").open("rb") as f:
            for n in range(size // page):
                assert f.read(page) == blocks[n % len(blocks)], n


@pytest.mark.skipif(os.geteuid() != 0, reason="the backing device's limits are root's to set")
def test_a_limit_the_kernel_refuses_leaves_the_mount_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """As when the minimums of all devices would pass 100%: the refusal is logged, nothing raised, and the
    mount keeps the limits it had and works."""
    with new_mount(tmp_path) as m:
        bdi = bdi_dir(m.path)
        before = (bdi / "min_ratio").read_text()
        with caplog.at_level("INFO", logger="vfs.fuse.kernel"):
            tune_bdi(str(m.path), {"min_ratio": "101"})
        assert (bdi / "min_ratio").read_text() == before
        assert "could not set min_ratio" in caplog.text
        (m.path / "f").write_bytes(b"still works")
        assert (m.path / "f").read_bytes() == b"still works"
        m.stop()
