"""vfs install-units [--dest DIR] [--sbin DIR] [--bin DIR] [--print]: install systemd units and helpers.

Copies `systemd/vfs@.service`, `vfs-backup@.service` and `vfs-backup@.timer` into DEST
(/etc/systemd/system) with the real paths of this vfs command and of the backup script, installs the
backup script as BIN/vfs-backup (/usr/local/bin) and the mount helper as SBIN/mount.fuse.vfs (/sbin),
so that an /etc/fstab line `STORE /mnt/data fuse.vfs defaults,_netdev 0 0` mounts with `mount
/mnt/data`. With --print, only prints the steps as shell commands.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from vfs.errors import VfsError
from vfs.fsutil import replace_file

UNITS = ("vfs@.service", "vfs-backup@.service", "vfs-backup@.timer")
SOURCE = Path(__file__).resolve().parents[2]  # the source tree (systemd/ and scripts/ live there)
HELPER = """#!/bin/sh
# mount(8) helper for vfs volumes (type fuse.vfs), installed by `vfs install-units`.
# mount(8) runs: mount.fuse.vfs STORE MOUNTPOINT [-o OPTIONS] [-n] [-s] [-f] [-v]
exec {python} -m vfs.cli.mount_helper "$@"
"""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "install-units", help="install the systemd units, the backup script and the fstab mount helper")
    p.add_argument("--dest", type=Path, default=Path("/etc/systemd/system"), help="where units go")
    p.add_argument("--sbin", type=Path, default=Path("/sbin"), help="where mount.fuse.vfs goes")
    p.add_argument("--bin", type=Path, default=Path("/usr/local/bin"), help="where vfs-backup goes")
    p.add_argument("--print", action="store_true", help="only print the steps")
    p.set_defaults(run=run)


def vfs_command() -> str:
    """The path of this vfs command (the console script next to this Python, else found on PATH)."""
    here = Path(sys.executable).with_name("vfs")
    return str(here) if here.exists() else shutil.which("vfs") or str(here)


def render(name: str, bin_dir: Path) -> str:
    """Unit `name` with the real paths of vfs and vfs-backup in it."""
    path = SOURCE / "systemd" / name
    if not path.is_file():
        raise VfsError(f"{path} is missing: install-units works from a source tree of vfs")
    text = path.read_text()
    return text.replace("/usr/local/bin/vfs-backup", str(bin_dir / "vfs-backup")).replace(
        "/usr/local/bin/vfs ", vfs_command() + " ").replace("VFS=/usr/local/bin/vfs\n", f"VFS={vfs_command()}\n")


def helper_script() -> str:
    return HELPER.format(python=shlex.quote(sys.executable))


def run(args: argparse.Namespace) -> int:
    backup = SOURCE / "scripts" / "vfs-backup"
    steps: list[tuple[Path, str, int]] = [(args.dest / n, render(n, args.bin), 0o644) for n in UNITS]
    steps.append((args.bin / "vfs-backup", backup.read_text(), 0o755))
    steps.append((args.sbin / "mount.fuse.vfs", helper_script(), 0o755))
    if args.print:
        for path, text, mode in steps:
            print(f"install -m {mode:o} /dev/stdin {shlex.quote(str(path))} <<'EOF'\n{text.rstrip()}\nEOF")
        print("systemctl daemon-reload")
        return 0
    os.umask(0o022)  # system files for every user: main() set 077, meant for stores
    for path, text, mode in steps:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, text.encode(), mode=mode)
        print(f"installed {path}")
    if shutil.which("systemctl") and args.dest == Path("/etc/systemd/system") and Path("/run/systemd/system").is_dir():
        os.system("systemctl daemon-reload")
    return 0
