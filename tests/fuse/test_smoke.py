from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from tests.fuse.conftest import VFS, Mount, vfs

pytestmark = pytest.mark.fuse


def test_write_read_survives_remount(mount: Mount) -> None:
    f = mount.path / "notes.txt"
    f.write_text("hello\n")
    with f.open("a") as out:
        out.write("world\n")
    assert f.read_text() == "hello\nworld\n"
    mount.stop()
    mount.start()
    assert f.read_text() == "hello\nworld\n"


def test_closed_file_survives_kill9(mount: Mount) -> None:
    data = bytes(range(256)) * 4096
    (mount.path / "a.bin").write_bytes(data)
    mount.kill9()
    mount.start()
    assert (mount.path / "a.bin").read_bytes() == data


def test_listing(mnt: Path) -> None:
    for i in range(50):
        (mnt / f"f{i:03d}").write_text(str(i))
    assert sorted(p.name for p in mnt.iterdir()) == [f"f{i:03d}" for i in range(50)]


def test_sigterm_keeps_what_a_file_still_open_wrote(mount: Mount) -> None:
    """A graceful stop (systemctl stop) includes writes the kernel still caches for an open file."""
    import contextlib
    import os
    import signal
    import time

    log = open(mount.path / "app.log", "w")  # noqa: SIM115 - kept open across the stop on purpose
    log.write("still open at shutdown\n")
    log.flush()
    pid = mount.pid
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        log.close()  # the mount is gone: its flush fails, harmlessly
    mount.start()
    assert (mount.path / "app.log").read_text() == "still open at shutdown\n"


def test_a_snapshot_holds_what_files_still_open_wrote(mount: Mount) -> None:
    """Writes the kernel still caches for open files (writeback cache) are in a snapshot taken now.

    syncfs(2) alone no longer waits for a FUSE mount's write-back on recent kernels: most of these
    snapshots missed the data before the daemon also fsync'd each file open for writing.
    """
    files = []
    try:
        for i in range(20):
            f = open(mount.path / f"open{i}", "w")  # noqa: SIM115 - kept open on purpose
            files.append(f)
            f.write(f"line {i}\n" * 100)
            f.flush()
            (mount.path / ".snapshots" / f"s{i}").mkdir()
            assert (mount.path / ".snapshots" / f"s{i}" / f"open{i}").read_text() == f"line {i}\n" * 100
    finally:
        for f in files:
            f.close()


def test_many_files_with_unsaved_content_under_a_low_open_files_limit(tmp_path: Path) -> None:
    """Each file with uncommitted content holds a staging file open in the daemon. Started with a soft
    limit of 256 descriptors (a service's default is 1,024), the daemon raises it to the hard limit:
    600 files written and fsync'd while all stay open are all kept."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    vfs("init", str(store))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        pytest.skip(f"the hard open files limit ({hard}) leaves no room to test")
    m = Mount(store, mnt)
    try:
        subprocess.run([*VFS, "mount", str(store), str(mnt)], check=True, timeout=60,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
        fds = []
        try:
            for i in range(600):
                fd = os.open(mnt / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o644)
                fds.append(fd)
                os.write(fd, b"%d\n" % i)
                os.fsync(fd)  # the write reaches the daemon now: its staging file is open from here
        finally:
            for fd in fds:
                os.close(fd)
        m.stop()
        m.start()
        assert all((mnt / f"f{i}").read_bytes() == b"%d\n" % i for i in range(600))
    finally:
        m.cleanup()
