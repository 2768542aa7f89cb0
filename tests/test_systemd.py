"""systemd units pass systemd-analyze verify; the daemon's sd_notify; the fstab mount helper, for real."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuse.conftest import is_mounted, vfs
from vfs.cli import cmd_install_units, mount_helper
from vfs.systemd import sd_notify

ANALYZE = shutil.which("systemd-analyze")


def _render(dest: Path) -> list[Path]:
    out = []
    for name in cmd_install_units.UNITS:
        path = dest / name.replace("@.", "@data.")
        path.write_text(cmd_install_units.render(name, Path(__file__).parents[1] / "scripts"))
        out.append(path)
    return out


def _verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, "verify", *map(str, paths)], capture_output=True, text=True, timeout=120,
                          cwd=paths[0].parent)


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    probe = subprocess.run([ANALYZE, "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"systemd-analyze cannot run in this container: {probe.stderr.strip()}")
    units = _render(tmp_path)
    done = _verify(units)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    text = units[0].read_text()
    assert "Type=notify" in text and "TimeoutStopSec=15min" in text and "Restart=on-failure" in text
    assert f"ExecStart={Path(sys.executable).with_name('vfs')} mount --foreground" in text
    # the check has teeth: a broken unit fails it
    units[0].write_text(text.replace("Type=notify", "Type=bogus").replace("ExecStart=", "ExecStart=relative/"))
    assert _verify(units).returncode != 0


def test_install_units_with_dest_writes_everything_under_it(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    done = vfs("install-units", "--dest", str(dest))
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert written == sorted([*(f"etc/systemd/system/{n}" for n in cmd_install_units.UNITS),
                              "usr/local/bin/vfs-backup", "sbin/mount.fuse.vfs", "usr/share/doc/vfs/README.md"])
    assert all(line.startswith(f"installed {dest}/") for line in done.stdout.splitlines()), done.stdout
    assert (dest / "usr/local/bin/vfs-backup").stat().st_mode & 0o777 == 0o755
    units = dest / "etc/systemd/system"
    # The files name their final paths, as a package's do; the docs they point at are installed.
    assert "ExecStart=/usr/local/bin/vfs-backup " in (units / "vfs-backup@.service").read_text()
    for name in cmd_install_units.UNITS:
        docs = [word for line in (units / name).read_text().splitlines() if line.startswith("Documentation=")
                for word in line.removeprefix("Documentation=").split()]
        assert docs, name
        for url in docs:
            assert url.startswith("file:///") and (dest / url.removeprefix("file:///")).is_file(), url
    printed = vfs("install-units", "--dest", str(dest / "p"), "--print").stdout
    assert "daemon-reload" not in printed and f"{dest}/p/sbin/mount.fuse.vfs" in printed
    assert not (dest / "p").exists()
    help_text = " ".join(vfs("install-units", "--help").stdout.split())
    assert "DIR/sbin/mount.fuse.vfs" in help_text and "/usr/share/doc/vfs/README.md" in help_text


def test_sd_notify_sends_a_datagram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sd_notify("READY=1")
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sd_notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(f"\0vfs-test-{os.getpid()}")
        monkeypatch.setenv("NOTIFY_SOCKET", f"@vfs-test-{os.getpid()}")
        assert sd_notify("STOPPING=1")
        assert sock.recv(100) == b"STOPPING=1"


def test_mount_helper_translates_options() -> None:
    t = mount_helper.translate
    assert t(["/s", "/m", "-o", "rw,defaults,_netdev,nofail,x-systemd.automount"]) == ["mount", "/s", "/m"]
    assert t(["/s", "/m", "-n", "-o", "version_interval=60"]) == ["mount", "/s", "/m", "--version-interval", "60"]
    for bad in (["/s"], ["/s", "/m", "-o", "ro"], ["/s", "/m", "-o", "frobnicate"]):
        with pytest.raises(ValueError):
            t(bad)


@pytest.mark.fuse
def test_daemon_notifies_systemd_when_the_mount_answers(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    vfs("init", str(store))
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(60)
        proc = subprocess.Popen([sys.executable, "-m", "vfs.cli.main", "mount", "--foreground", str(store), str(mnt)],
                                env={**os.environ, "NOTIFY_SOCKET": str(path)}, stderr=subprocess.DEVNULL)
        try:
            assert sock.recv(100) == b"READY=1"
            assert is_mounted(mnt)
            (mnt / "f").write_bytes(b"data")
            proc.terminate()  # SIGTERM, as systemctl stop sends: a clean unmount that commits everything
            assert sock.recv(100) == b"STOPPING=1"
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
    assert not is_mounted(mnt)
    assert vfs("cat", "--store", str(store), "f@1").stdout == "data"


@pytest.mark.fuse
def test_fstab_line_mounts_with_plain_mount(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8)")
    helper = Path("/sbin/mount.fuse.vfs")
    if helper.exists():
        pytest.skip(f"{helper} exists already (installed by vfs install-units): not replacing it")
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    vfs("init", str(store))
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{store} {mnt} fuse.vfs defaults,_netdev,version_interval=60 0 0\n")
    helper.write_text(cmd_install_units.helper_script())
    helper.chmod(0o755)
    try:
        done = subprocess.run(["mount", "-T", str(fstab), str(mnt)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert is_mounted(mnt)
        (mnt / "hello").write_text("hi")
        vfs("umount", str(mnt))
        assert not is_mounted(mnt)
        assert vfs("cat", "--store", str(store), "hello@1").stdout == "hi"
    finally:
        helper.unlink()
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
