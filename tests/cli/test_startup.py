"""What the `vfs` command imports to start: commands that need no store open (help, umount, a mounted
store's status through its control socket) load no trio, boto3, cryptography, catalog or store. And
`vfs mount`'s daemon, started before the store is checked, leaves nothing behind when the check fails."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import VFS, fails, out
from tests.fuse.conftest import Mount

# What costs a command start-up tenths of a second and only opening a store (or serving one) needs.
HEAVY = {"trio", "boto3", "botocore", "cryptography", "argon2", "sqlite3", "pyfuse3", "dateparser", "blake3",
         "zstandard", "vfs.catalog.catalog", "vfs.store.chunkstore", "vfs.repository", "vfs.compose",
         "vfs.api.volume", "vfs.maintenance.service"}


def imported(*args: str | Path) -> set[str]:
    """The modules `vfs ARGS` imports (whatever its exit status), from python -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", *VFS[1:], *map(str, args)], capture_output=True,
                          text=True, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "vfs.cli.common" in names, done.stderr  # the probe sees the command's imports
    return names


@pytest.mark.parametrize("args", [
    ["--help"],
    ["mount", "--help"],
    ["log", "--help"],
    ["umount", "NOT-A-MOUNT"],
    ["status", "--mount", "NOT-A-MOUNT"],
])
def test_light_commands_import_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    assert imported(*[str(tmp_path / a) if a == "NOT-A-MOUNT" else a for a in args]) & HEAVY == set()


def test_a_command_that_opens_a_store_imports_it(tmp_path: Path) -> None:
    out("init", tmp_path / "s")
    assert {"vfs.repository", "vfs.catalog.catalog"} <= imported("status", "--store", tmp_path / "s")


@pytest.mark.fuse
def test_a_mounted_store_is_asked_and_unmounted_without_heavy_imports(mount: Mount) -> None:
    assert imported("status", "--mount", mount.path) & HEAVY == set()
    assert imported("snapshot", "create", "--mount", mount.path, "s1") & HEAVY == set()
    assert imported("umount", mount.path) & HEAVY == set()
    assert not os.path.ismount(mount.path)
    assert "all data committed" in (mount.store / "vfs.log").read_text()


def _daemons_of(mnt: Path) -> list[int]:
    """The pids of vfs processes whose command line names `mnt`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"vfs.cli.main" in cmdline and os.fsencode(mnt) in cmdline:
            found.append(int(pid))
    return found


def test_a_store_failing_the_check_gets_no_daemon_and_no_log(tmp_path: Path) -> None:
    (tmp_path / "nostore").mkdir()
    (tmp_path / "mnt").mkdir()
    fails(3, "mount", tmp_path / "nostore", tmp_path / "mnt", match="is not a vfs store")
    assert list((tmp_path / "nostore").iterdir()) == []  # no vfs.log in a directory that is no store
    assert _daemons_of(tmp_path / "mnt") == []  # the daemon started early is gone with the command
    assert not os.path.ismount(tmp_path / "mnt")


def test_a_wrong_passphrase_leaves_no_daemon(tmp_path: Path) -> None:
    store, mnt = tmp_path / "s", tmp_path / "mnt"
    mnt.mkdir()
    (tmp_path / "right").write_text("the right passphrase\n")
    (tmp_path / "wrong").write_text("a wrong one\n")
    out("init", store, "--encrypt", "--password-file", tmp_path / "right")
    fails(7, "mount", store, mnt, "--password-file", tmp_path / "wrong", match="wrong passphrase")
    assert _daemons_of(mnt) == []
    assert not os.path.ismount(mnt)
    assert not (store / "vfs.log").exists()  # the daemon never started serving


def test_a_vfs_mount_killed_during_its_check_leaves_no_daemon(tmp_path: Path) -> None:
    """The daemon started early waits for the word to start; killed while it asks for the passphrase (a
    FIFO nobody writes), `vfs mount` closes that pipe by dying, and the daemon goes without a trace."""
    store, mnt, fifo = tmp_path / "s", tmp_path / "mnt", tmp_path / "passphrase"
    mnt.mkdir()
    (tmp_path / "right").write_text("the right passphrase\n")
    out("init", store, "--encrypt", "--password-file", tmp_path / "right")
    os.mkfifo(fifo)
    proc = subprocess.Popen([*VFS, "mount", str(store), str(mnt), "--password-file", str(fifo)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(_daemons_of(mnt)) < 2:  # `vfs mount`, blocked on the FIFO, and its daemon
            assert time.monotonic() < deadline and proc.poll() is None, "no daemon started"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60
    while _daemons_of(mnt):
        assert time.monotonic() < deadline, "the daemon outlived a killed vfs mount"
        time.sleep(0.05)
    assert not os.path.ismount(mnt)
    assert not (store / "vfs.log").exists()
