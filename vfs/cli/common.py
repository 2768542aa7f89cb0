"""What several commands share: the default store, finding the store behind a mount, and turning arguments
into targets.

A command acts on a *store*: given by --store, found from a mount point (--mount, a path inside a
mount, or else the current directory when it lies inside a mount), or the default store. Paths the
user gives are either inside a mounted volume (and resolved through /proc/self/mountinfo) or, with
--store, paths inside the volume itself.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vfs.api.location import default_store as default_store  # commands find it here
from vfs.errors import UsageError
from vfs.passwords import get_passphrase, key_file_or_new

log = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds an option may give at most: ~31 years, far beyond any use, and what every timer (a socket's
# timeout among them) accepts.
MAX_SECONDS = 1e9


def _unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (\\040 for a space) decoded."""
    return field.encode().decode("unicode_escape")


def vfs_mounts() -> list[tuple[str, Path]]:
    """(mount point, store) of every vfs mount this process can see."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "fuse.vfs":
                out.append((_unescape(fields[4]), Path(_unescape(fields[sep + 2]))))
    return out


def find_mount(mnt: Path | str) -> Path:
    """The store behind the vfs mount point `mnt`."""
    target = os.path.realpath(mnt)
    for point, store in vfs_mounts():
        if point == target:
            return store
    raise UsageError(f"{mnt} is not a vfs mount point")


def mount_containing(real_path: str) -> tuple[str, Path] | None:
    """(mount point, store) of the innermost vfs mount holding the resolved path `real_path`."""
    best: tuple[str, Path] | None = None
    for point, store in vfs_mounts():
        inside = real_path == point or real_path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[0])):
            best = (point, store)
    return best


def add_store_options(p: argparse.ArgumentParser, *, mount: bool = True, positional: bool = False,
                      remote: bool = False) -> None:
    """--store STORE (with `positional`: a STORE argument instead), and --mount MNT: one or neither.
    With `remote`, --store may be a remote volume `s3://BUCKET/PREFIX` (a str, a store directory being
    a Path), with --endpoint-url, --region and --cache-dir (`vfs.api.remote`)."""
    group = p.add_mutually_exclusive_group()
    where = "PATH or the current directory" if not positional else "the current directory"
    help = f"the store (default: the vfs mount holding {where}, else $VFS_HOME or ~/.local/share/vfs/default)"
    if positional:
        group.add_argument("store", nargs="?", type=argument_type(_store_directory), help=help)
    elif remote:
        group.add_argument("--store", type=_location, metavar="STORE", help=help + ", or a remote volume"
                           " s3://BUCKET/PREFIX (read through a cache; written as its writer, holding its lease)")
        r = p.add_argument_group("a remote volume (--store s3://BUCKET/PREFIX)")
        r.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible endpoint (MinIO, Garage, Ceph)")
        r.add_argument("--region", metavar="R", help="the bucket's region")
        r.add_argument("--cache-dir", type=Path, metavar="DIR",
                       help="where the volume is cached (default: ~/.cache/vfs/follow/<bucket and prefix>,"
                            " as vfs mount --follow)")
    else:
        group.add_argument("--store", type=argument_type(_store_directory), metavar="STORE", help=help)
    if mount:
        group.add_argument("--mount", type=Path, metavar="MNT", help="the store mounted at MNT")
    add_passphrase_options(p)


def _store_directory(text: str) -> Path:
    if text.startswith("s3://"):
        raise UsageError(f"{text}: this command needs a store directory (vfs put, get and ls take an s3:// volume;"
                         " else clone it with 'vfs clone')")
    return Path(text)


def _location(text: str) -> Path | str:
    return text if text.startswith("s3://") else Path(text)


def add_passphrase_options(p: argparse.ArgumentParser) -> None:
    """--password-file and --key-file: how an encrypted volume is opened (one or neither)."""
    group = p.add_argument_group("encrypted volumes (else $VFS_PASSWORD_FILE, $VFS_PASSWORD_COMMAND, $VFS_PASSWORD, "
                                 "the systemd credential vfs-password, or a prompt)")
    group.add_argument("--password-file", type=Path, metavar="FILE", help="read the passphrase from FILE")
    group.add_argument("--key-file", type=Path, metavar="FILE", help="open the volume with this key file")


def passphrase_of(args: argparse.Namespace, *, new: bool = False) -> Callable[[], bytes]:
    """The passphrase the command's options and environment give, asked for only when it is needed
    (an encrypted store); `new`: one being set (a prompt asks twice)."""

    def get() -> bytes:
        return get_passphrase(password_file=getattr(args, "password_file", None),
                              key_file=getattr(args, "key_file", None), new=new).secret

    return get


def new_passphrase(args: argparse.Namespace) -> bytes:
    """A new volume's passphrase: --key-file FILE creates FILE when it does not exist (a new key file);
    otherwise the sources of `passphrase_of`, a prompt asking twice."""
    if args.key_file is not None and args.password_file is None:
        return key_file_or_new(args.key_file).secret
    return passphrase_of(args, new=True)()


# argparse reads every word led by '-' but a negative number as an option, so `--since -1h` was "expected
# one argument" and `vfs diff -1h` an unknown option. It has no public hook for this: its per-parser
# negative-number pattern is where it decides, so the parsers that take times widen it to relative times.
_NEGATIVE_NUMBER_OR_RELATIVE_TIME = re.compile(r"^-\d+$|^-\d*\.\d+$|^-(\d+[smhdwy])+$", re.ASCII)


def accept_relative_times(p: argparse.ArgumentParser) -> None:
    """Let `p`'s options and arguments take relative times such as -2h or -1d12h without '='."""
    p._negative_number_matcher = _NEGATIVE_NUMBER_OR_RELATIVE_TIME


def store_of(args: argparse.Namespace) -> Path:
    """The store named by --store or --mount, else the one mounted where the command runs, else the
    default store."""
    if getattr(args, "mount", None) is not None:
        return find_mount(args.mount)
    if args.store is not None:
        return Path(args.store).absolute()
    return store_of_cwd() or default_store().absolute()


def store_of_cwd() -> Path | None:
    """The store of the vfs mount holding the current directory, if it lies in one.

    `cd MNT/sub && vfs snapshot list` means that volume, as `git log` means the repository it runs in.
    """
    try:
        cwd = os.getcwd()  # the kernel's path: symlinks already resolved
    except OSError:  # the directory was removed, or its mount died (ENOTCONN)
        return None
    found = mount_containing(cwd)
    return None if found is None else found[1]


@dataclass(frozen=True)
class Target:
    store: Path
    names: tuple[bytes, ...]  # the path inside the volume
    spec: str | None  # what followed '@' (None: no '@')
    mountpoint: str | None  # set when the path was given inside a mount


def target(args: argparse.Namespace, text: str) -> Target:
    """The store and volume path `text` (`PATH` or `PATH@SPEC`) names.

    With --store, PATH is a path inside the volume; otherwise it must lie inside a vfs mount.
    """
    from vfs.fs.locate import split_spec, volume_names  # the catalog's import: only commands that open it

    path, spec = split_spec(text)
    if args.store is not None:
        return Target(Path(args.store).absolute(), volume_names(path), spec, None)
    absolute = os.path.abspath(path)
    head, base = os.path.split(absolute)
    # Resolve the directories only: the last name may be deleted, or a symlink meant as itself.
    real = os.path.join(os.path.realpath(head), base) if base else os.path.realpath(absolute)
    found = mount_containing(real)
    if found is None:
        raise UsageError(f"{path} is not inside a vfs mount; give --store STORE and a path inside the volume")
    point, store = found
    return Target(store, volume_names(os.path.relpath(real, point)), spec, point)


def same_volume(first: Target, args: argparse.Namespace, text: str) -> tuple[bytes, ...]:
    """The volume path of `text`, which must be in the same volume as `first` (e.g. --to DEST)."""
    from vfs.fs.locate import joined

    other = target(args, text)
    if other.store != first.store:
        raise UsageError(f"{text} is not in the same volume as the source")
    # A destination takes no @SPEC: an '@' in it is part of a name (user@host.txt).
    return other.names if other.spec is None else joined(other.names, other.spec)


def settle(store: Path) -> None:
    """When `store` is mounted, have the daemon commit what open and just-closed files hold.

    Read-only commands then see what was written before they ran (the committer is asynchronous).
    """
    from vfs.control.client import call, daemon_running

    if daemon_running(store):
        call(store, {"op": "flush"})


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """`parse` (which raises UsageError) as an argparse `type=`.

    argparse turns only its own ArgumentTypeError (and ValueError, TypeError) into an error naming the
    option: anything else would escape as a traceback.
    """

    def typed(text: str) -> T:
        try:
            return parse(text)
        except UsageError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    typed.__name__ = getattr(parse, "__name__", "value")  # argparse names the type in some messages
    return typed


def positive_seconds(text: str) -> float:
    """An argparse `type=` for a duration in seconds: a finite number above 0 (nan, inf, 0, -5 refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise argparse.ArgumentTypeError(f"seconds must be a number above 0 and at most {MAX_SECONDS:g},"
                                         f" not {text!r}")
    return value
