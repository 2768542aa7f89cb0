"""Fixtures that mount vfs through the kernel with the real `vfs` command, and always unmount."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

VFS = [sys.executable, "-m", "vfs.cli.main"]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]  # run a command as user nobody


def vfs(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*VFS, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:  # say why: CalledProcessError would not show stderr
        raise AssertionError(f"vfs {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class Mount:
    """A vfs mount of `store` at `path`, driven by the real CLI."""

    def __init__(self, store: Path, path: Path, *extra: str) -> None:
        self.store = store
        self.path = path
        self.extra = extra

    def start(self) -> None:
        vfs("mount", str(self.store), str(self.path), *self.extra)
        assert is_mounted(self.path)

    @property
    def pid(self) -> int:
        return int((self.store / "lock").read_text().strip())

    def stop(self) -> None:
        """Unmount cleanly (waits until everything is committed)."""
        vfs("umount", str(self.path))
        assert not is_mounted(self.path)

    def kill9(self) -> None:
        """Kill the daemon with SIGKILL and detach the dead mount, as a crash would leave it."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        self.detach_dead(pid)

    def detach_dead(self, pid: int) -> None:
        """Wait until daemon `pid` (killed, or killing itself) is gone, then detach its dead mount."""
        for _ in range(400):
            if not os.path.exists(f"/proc/{pid}") or _is_zombie(pid):
                break
            time.sleep(0.05)
        subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)

    def log_problems(self) -> list[str]:
        """The WARNING, ERROR and traceback lines of the daemon's log (vfs.log in the store)."""
        log = self.store / "vfs.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return [line for line in text.splitlines() if " WARNING " in line or " ERROR " in line or "Traceback" in line]

    def cleanup(self) -> None:
        unmounted = not is_mounted(self.path) or subprocess.run(
            [*VFS, "umount", str(self.path)], capture_output=True, timeout=60).returncode == 0
        if not unmounted:
            subprocess.run(["fusermount3", "-uz", str(self.path)], capture_output=True)
        try:
            pid = self.pid
        except (OSError, ValueError):
            return
        if os.path.exists(f"/proc/{pid}") and pid != os.getpid():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return
            if b"vfs.cli.main" in cmdline:
                os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@contextmanager
def new_mount(base: Path, *init_args: str) -> Iterator[Mount]:
    """A store freshly initialized under `base` (`vfs init STORE *init_args`), mounted; always unmounted
    (or detached) after."""
    store, mnt = base / "store", base / "mnt"
    mnt.mkdir()
    vfs("init", str(store), *init_args)
    m = Mount(store, mnt)
    m.start()
    try:
        yield m
    finally:
        m.cleanup()


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """A freshly initialized store, mounted; unmounted (or forcibly detached) at teardown."""
    with new_mount(tmp_path) as m:
        yield m


@pytest.fixture
def mnt(mount: Mount) -> Path:
    return mount.path
