"""vfs install-units [--dest DIR] [--bin DIR] [--sbin DIR] [--print]: install systemd units and helpers.

`WHAT_GOES_WHERE` (also the command's --help) lists the files. The units name the real path of this vfs
command and of vfs-backup.
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
UNIT_DIR = Path("/etc/systemd/system")
DOC = Path("/usr/share/doc/vfs/README.md")  # the units' Documentation=file://...
SOURCE = Path(__file__).resolve().parents[2]  # the source tree (systemd/, scripts/ and README.md live there)
WHAT_GOES_WHERE = """\
Installs:
  /etc/systemd/system/vfs@.service         the volume as a service (mode 644)
  /etc/systemd/system/vfs-backup@.service  one backup run: snapshot, sync, prune (644)
  /etc/systemd/system/vfs-backup@.timer    hourly backups (644)
  /usr/local/bin/vfs-backup                the backup script the service runs (755; --bin DIR instead)
  /sbin/mount.fuse.vfs                     the mount(8) helper for an /etc/fstab line such as
                                           'STORE /mnt/data fuse.vfs defaults,_netdev 0 0' (755; --sbin DIR)
  /usr/share/doc/vfs/README.md             the units' Documentation= (644)
then runs 'systemctl daemon-reload'.

With --dest DIR, every file goes under DIR instead (DIR/etc/systemd/system/vfs@.service, ...,
DIR/sbin/mount.fuse.vfs) and nothing is written outside DIR, nor is systemd reloaded: a staging root,
as a package build's DESTDIR, so the files still name their final paths (without DIR). With --print,
only prints the steps as shell commands.
"""
HELPER = """#!/bin/sh
# mount(8) helper for vfs volumes (type fuse.vfs), installed by `vfs install-units`.
# mount(8) runs: mount.fuse.vfs STORE MOUNTPOINT [-o OPTIONS] [-n] [-s] [-f] [-v]
exec {python} -m vfs.cli.mount_helper "$@"
"""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "install-units", help="install the systemd units, the backup script, the fstab mount helper and the README",
        description=WHAT_GOES_WHERE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dest", type=Path, metavar="DIR",
                   help="install under DIR instead of / (nothing is written outside DIR; the files name their"
                        " final paths)")
    p.add_argument("--sbin", type=Path, default=Path("/sbin"), metavar="DIR", help="where mount.fuse.vfs goes (/sbin)")
    p.add_argument("--bin", type=Path, default=Path("/usr/local/bin"), metavar="DIR",
                   help="where vfs-backup goes (/usr/local/bin)")
    p.add_argument("--print", action="store_true", help="only print the steps")
    p.set_defaults(run=run)


def vfs_command() -> str:
    """The path of this vfs command (the console script next to this Python, else found on PATH)."""
    here = Path(sys.executable).with_name("vfs")
    return str(here) if here.exists() else shutil.which("vfs") or str(here)


def render(name: str, bin_dir: Path) -> str:
    """Unit `name` with the real paths of vfs and vfs-backup in it."""
    text = _source(Path("systemd") / name).decode()
    return text.replace("/usr/local/bin/vfs-backup", str(bin_dir / "vfs-backup")).replace(
        "/usr/local/bin/vfs ", vfs_command() + " ").replace("VFS=/usr/local/bin/vfs\n", f"VFS={vfs_command()}\n")


def _source(relative: Path) -> bytes:
    path = SOURCE / relative
    if not path.is_file():
        raise VfsError(f"{path} is missing: install-units works from a source tree of vfs")
    return path.read_bytes()


def helper_script() -> str:
    return HELPER.format(python=shlex.quote(sys.executable))


def steps(bin_dir: Path, sbin_dir: Path) -> list[tuple[Path, bytes, int]]:
    """(final path, content, mode) of every file install-units writes."""
    out = [(UNIT_DIR / n, render(n, bin_dir).encode(), 0o644) for n in UNITS]
    out.append((bin_dir / "vfs-backup", _source(Path("scripts") / "vfs-backup"), 0o755))
    out.append((sbin_dir / "mount.fuse.vfs", helper_script().encode(), 0o755))
    out.append((DOC, _source(Path("README.md")), 0o644))
    return out


def under(root: Path | None, path: Path) -> Path:
    """Where the file meant for `path` (absolute) is written: `path` itself, or below `root` (--dest)."""
    return path if root is None else root / path.relative_to(path.anchor)


def run(args: argparse.Namespace) -> int:
    root = None if args.dest is None else args.dest.absolute()
    planned = [(under(root, final), text, mode)
               for final, text, mode in steps(args.bin.absolute(), args.sbin.absolute())]
    if args.print:
        for path, text, mode in planned:
            print(f"install -D -m {mode:o} /dev/stdin {shlex.quote(str(path))} <<'EOF'\n{text.decode().rstrip()}\nEOF")
        if root is None:
            print("systemctl daemon-reload")
        return 0
    os.umask(0o022)  # system files for every user: main() set 077, meant for stores
    for path, text, mode in planned:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, text, mode=mode)
        print(f"installed {path}")
    if root is None and shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        os.system("systemctl daemon-reload")
    return 0
