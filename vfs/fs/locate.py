"""Locate: what a volume path with an optional history spec (`PATH@SPEC`) names, for the CLI.

A *volume path* is a path inside the volume, as components from the root (`[b"docs", b"a.txt"]`).
*Locating* `PATH@SPEC` finds the inode the path led to and the state meant: a commit (a snapshot or
a time) or, for a file, one of its versions. A path that no longer exists is looked up where it last
existed, so a deleted file's history stays reachable by the name it had. Specs are parsed by
`vfs.fs.history`; as there, snapshot names are looked up before times, and a real name wins: when
`NAME@SPEC` is itself a name in the volume now (`user@host.txt`), it is that file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from vfs.catalog import LIVE, Catalog, Version
from vfs.errors import NotFound, UsageError
from vfs.fs.history import format_time, parse_spec, parse_time
from vfs.types import ROOT_INO, InodeNo


@dataclass(frozen=True)
class Located:
    """What `PATH@SPEC` names: `ino` as it was at commit `at`, and for a file the content meant."""

    names: tuple[bytes, ...]
    ino: InodeNo
    at: int  # a commit number, or LIVE for the present
    mode: int
    uid: int
    gid: int
    version: Version | None  # a regular file's content then (None: empty, or not a file)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


def split_spec(text: str) -> tuple[str, str | None]:
    """Split 'PATH@SPEC' at the last '@' of the last component; (text, None) if it has none."""
    head, slash, last = text.rpartition("/")
    base, at, spec = last.rpartition("@")
    if not at or not base:
        return text, None
    return head + slash + base, spec


def joined(names: tuple[bytes, ...], spec: str) -> tuple[bytes, ...]:
    """`names` with '@SPEC' put back on the last name: the path as typed, when the '@' is part of a name."""
    if not names:
        return names  # the root ('.@x' in it): it has no name to put it back on
    return (*names[:-1], names[-1] + b"@" + os.fsencode(spec))


def volume_names(path: str) -> tuple[bytes, ...]:
    """The components of a path inside the volume ('/' and '' are the root; '..' cannot leave it)."""
    names: list[bytes] = []
    for part in os.fsencode(path).split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if names:
                names.pop()
            continue
        names.append(part)
    return tuple(names)


def show(names: tuple[bytes, ...] | bytes) -> str:
    """A volume path for people: '/'-joined, no leading slash ('.' for the root)."""
    raw = names if isinstance(names, bytes) else b"/".join(names)
    return os.fsdecode(raw) or "."


def commit_for(catalog: Catalog, spec: str) -> int:
    """The commit a snapshot name or a time names (UsageError if it names neither)."""
    snap = catalog.snapshot(spec)
    if snap is not None:
        return snap.commit_no
    parsed = parse_spec(spec)
    if parsed is None:
        raise UsageError(f"{spec!r} is not a snapshot name or a valid time")
    if parsed.snapshot is not None:
        raise UsageError(f"no snapshot named {spec!r} (and it is not a time)")
    if parsed.listing or parsed.version is not None:
        raise UsageError(f"{spec!r} is a version number; expected a snapshot name or a time")
    assert parsed.time_ns is not None
    found = catalog.commit_at_time(parsed.time_ns)
    if found is None:
        raise UsageError(f"the store did not exist yet at {format_time(parsed.time_ns)}")
    return found


def time_arg(text: str, what: str) -> int:
    """A time given as an option (--since, --until), in ns since the epoch."""
    t = parse_time(text)
    if t is None:
        raise UsageError(f"{what}: {text!r} is not a valid time (e.g. 2026-11-21T10:15, -2h, yesterday)")
    return t


def latest(catalog: Catalog, names: tuple[bytes, ...]) -> tuple[InodeNo, int]:
    """The inode the path leads to now, or where it last existed: (inode, LIVE or that last commit)."""
    if not names:
        return ROOT_INO, LIVE
    spans = catalog.path_spans(names)
    if not spans:
        raise NotFound(f"{show(names)} does not exist and never did")
    ino, _, end = spans[-1]
    return ino, LIVE if end == LIVE else end - 1


def lookup_at(catalog: Catalog, names: tuple[bytes, ...], at: int) -> InodeNo | None:
    ino: InodeNo | None = ROOT_INO
    for name in names:
        assert ino is not None
        ino = catalog.lookup(ino, name, at)
        if ino is None:
            return None
    return ino


def locate(catalog: Catalog, names: tuple[bytes, ...], spec: str | None) -> Located:
    """What `names@spec` names (spec None: the path now, or where it last existed).

    Raises:
        UsageError: the spec is malformed, or names no snapshot, time or version of the file.
        NotFound: the path did not exist at the commit the spec names.
    """
    if spec is not None and lookup_at(catalog, joined(names, spec), LIVE) is not None:
        names, spec = joined(names, spec), None  # a real name wins, as in the mount
    if spec is None:
        ino, at = latest(catalog, names)
        return _located(catalog, names, ino, at)
    # Snapshot names come before numbers and times, as in the mount's history names.
    parsed = None if catalog.snapshot(spec) else parse_spec(spec)
    if parsed is not None and parsed.listing:
        raise UsageError(f"{show(names)}@ lists versions in the mount; name one here: {show(names)}@N")
    if parsed is not None and parsed.version is not None:
        ino, at = latest(catalog, names)
        if not stat.S_ISREG(catalog.attr(ino, at).mode):
            raise UsageError(f"{show(names)} is not a regular file: it has no numbered versions")
        version = catalog.version(ino, parsed.version)
        if version is None:
            last = catalog.attr(ino, at).vno
            have = f"it has versions 1 to {last}" if last else "it has no versions"
            raise UsageError(f"{show(names)} has no version {parsed.version} ({have})")
        # The owner and mode it was made with, as FILE@N shows in the mount (see catalog.Version).
        return Located(names, ino, version.commit_no, version.mode, version.uid, version.gid, version)
    return _located(catalog, names, *latest(catalog, names), at_spec=commit_for(catalog, spec))


def _located(
    catalog: Catalog, names: tuple[bytes, ...], ino: InodeNo, at: int, *, at_spec: int | None = None
) -> Located:
    if at_spec is not None:
        found = lookup_at(catalog, names, at_spec)
        if found is None:
            raise NotFound(f"{show(names)} did not exist at that time (commit {at_spec})")
        ino, at = found, at_spec
    attr = catalog.attr(ino, at)
    version = catalog.version_at(ino, at) if stat.S_ISREG(attr.mode) else None
    return Located(names, ino, at, attr.mode, attr.uid, attr.gid, version)
