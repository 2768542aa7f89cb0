"""Reading a volume for the API: what `PATH[@SPEC]` or `blake3:HASH` names, listings, trees and versions.

Every lookup goes through `vfs.fs.locate` (the `@SPEC` grammar of the mount, parsed by `vfs.fs.history`);
here its errors become the ones a Python user expects: a path or spec that names nothing is
`NoSuchPath` (a FileNotFoundError), whatever the reason (no such file, no version 9, no snapshot named
so, a time before the file existed).
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from vfs.catalog import LIVE, Catalog, Version
from vfs.errors import NoSuchPath, NotFound, UsageError
from vfs.fs.locate import Located, latest, locate, show, split_spec, volume_names
from vfs.types import ROOT_INO, InodeNo

HASH_PREFIX = "blake3:"
MIN_HEX = 8  # digits of a hash prefix at least (as `vfs cat blake3:PREFIX` takes them)
END_OF_TIME_NS = 2**63 - 1
_NS = 1_000_000_000
_BATCH = 512


@dataclass(frozen=True)
class Entry:
    """A name in the volume, at the state a path's `@SPEC` names (or now).

    `name` is the path inside the volume, with the `@SPEC` it was asked with on its last component
    (`results/run1.csv@yesterday`), so it can be passed back to any method; `type` is "file",
    "directory" or "other"; `hash` is "blake3:..." of a file's content ("" for others); `version` the
    file's version number then (0: empty or not a file).
    """

    name: str
    type: str
    size: int
    mode: int
    mtime: float  # seconds since the epoch
    version: int
    hash: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "size": self.size, "mode": self.mode, "mtime": self.mtime,
                "version": self.version, "hash": self.hash}


@dataclass(frozen=True)
class FileVersion:
    """One version of a file: its number, when it was made, size and content hash, and the file's path."""

    path: str
    version: int
    time: datetime  # local time, naive, as `vfs log` shows it
    time_ns: int
    size: int
    hash: str  # "blake3:..."
    origin: str  # what made it: write, put, restore, ...

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "version": self.version, "time": self.time.isoformat(), "time_ns": self.time_ns,
                "size": self.size, "hash": self.hash, "origin": self.origin}


def hash_text(content_hash: bytes) -> str:
    return HASH_PREFIX + content_hash.hex()


def is_hash(text: str) -> bool:
    return text.startswith(HASH_PREFIX)


def split(text: str) -> tuple[tuple[bytes, ...], str | None]:
    """('PATH@SPEC') -> (volume names, spec or None)."""
    path, spec = split_spec(text)
    return volume_names(path), spec


def located(catalog: Catalog, text: str) -> Located:
    """What `PATH[@SPEC]` names (NoSuchPath when nothing)."""
    names, spec = split(text)
    try:
        found = locate(catalog, names, spec)
    except (NotFound, UsageError) as e:  # locate's "no version 9", "no snapshot named x" are UsageErrors
        raise NoSuchPath(f"{text}: {e}") from None
    if spec is None and found.at != LIVE:  # locate finds a deleted path where it last was; no @: now
        raise NoSuchPath(f"{text} does not exist now (it was deleted: read it as it was with {text}@TIME)")
    return found


def by_hash(catalog: Catalog, text: str) -> Version:
    """The content whose hash is `blake3:HEX` (HEX: 8 to 64 digits, a unique prefix).

    Raises:
        UsageError: not such a hash, or an ambiguous prefix.
        NoSuchPath: no content has it.
    """
    digits = text[len(HASH_PREFIX):] if is_hash(text) else text
    if not re.fullmatch(r"[0-9a-fA-F]+", digits) or len(digits) % 2 or not MIN_HEX <= len(digits) <= 64:
        raise UsageError(f"{HASH_PREFIX}{digits}: expected {MIN_HEX} to 64 hex digits (an even number)")
    found = catalog.hashes_with_prefix(bytes.fromhex(digits))
    if not found:
        raise NoSuchPath(f"no content with hash {HASH_PREFIX}{digits}")
    if len(found) > 1:
        raise UsageError(f"{HASH_PREFIX}{digits} is ambiguous: give more digits")
    version = catalog.version_by_hash(found[0])
    assert version is not None
    return version


def content(catalog: Catalog, text: str) -> Version | None:
    """The content `PATH[@SPEC]` or `blake3:HASH` names (None: an empty file).

    Raises:
        NoSuchPath: it names nothing.
        IsADirectory: it names a directory.
    """
    if is_hash(text):
        return by_hash(catalog, text)
    found = located(catalog, text)
    if found.is_dir:
        from vfs.errors import IsADirectory

        raise IsADirectory(f"{text} is a directory")
    return found.version


def entry(catalog: Catalog, found: Located, name: str) -> Entry:
    attr = catalog.attr(found.ino, found.at)
    mode = found.mode
    kind = "directory" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"
    v = found.version
    size = v.size if v is not None else (0 if kind == "file" else attr.size)
    mtime_ns = v.mtime_ns if v is not None else attr.mtime_ns  # a version's own, also for FILE@N
    return Entry(name, kind, size, mode, mtime_ns / _NS, v.vno if v is not None else 0,
                 hash_text(v.hash) if v is not None else "")


def with_spec(names: tuple[bytes, ...], spec: str | None) -> str:
    """A volume path as the API shows it: '/'-joined, no leading '/', '' for the root, '@SPEC' on its end."""
    path = show(names) if names else ""
    if path == ".":
        path = ""
    return path if spec is None else f"{path}@{spec}"


def listing(catalog: Catalog, text: str) -> list[Entry]:
    """The entries of the directory `PATH[@SPEC]` names, sorted by name; a file lists as itself."""
    found = located(catalog, text)
    names, spec = split(text)
    if found.names != names:  # a real name with an '@' in it won: the spec was part of it
        spec = None
    if not found.is_dir:
        return [entry(catalog, found, text)]
    out = []
    for name, child in children(catalog, found.ino, found.at):
        path = (*found.names, name)
        attr = catalog.attr(child, found.at)
        version = catalog.version_at(child, found.at) if stat.S_ISREG(attr.mode) else None
        sub = Located(path, child, found.at, attr.mode, attr.uid, attr.gid, version)
        out.append(entry(catalog, sub, with_spec(path, spec if spec is not None and not _is_version(spec) else None)))
    return sorted(out, key=lambda e: e.name)


def _is_version(spec: str) -> bool:
    return spec.isascii() and spec.isdigit()


def children(catalog: Catalog, ino: InodeNo, at: int) -> Iterator[tuple[bytes, InodeNo]]:
    after = 0
    while entries := catalog.readdir(ino, after, _BATCH, at=at):
        for e in entries:
            yield e.name, e.ino
        after = entries[-1].cookie


@dataclass(frozen=True)
class TreeItem:
    """A name under a directory at some commit: its path below the directory, kind, size, and inode."""

    names: tuple[bytes, ...]
    mode: int
    size: int
    ino: InodeNo
    has_content: bool  # a regular file with a version (not empty)


def tree(catalog: Catalog, found: Located) -> Iterator[TreeItem]:
    """Everything under the directory `found` names, as it was then, parents first (one query)."""
    prefix = b"/".join(found.names)
    for e in catalog.tree(found.at):
        if prefix and not e.path.startswith(prefix + b"/"):
            continue
        rel = e.path[len(prefix) + 1:] if prefix else e.path
        yield TreeItem(tuple(rel.split(b"/")), e.mode, e.size, e.ino, stat.S_ISREG(e.mode) and e.hash is not None)


def versions(catalog: Catalog, path: str, since_ns: int | None, until_ns: int | None) -> list[FileVersion]:
    """A file's versions oldest first, or (a directory) those of every file that is or was under it,
    newest first; only those made in [since, until]. A deleted file's are found under its last name."""
    names = volume_names(path)  # no @SPEC here, as in `vfs log`: an '@' is part of the name
    try:
        ino, at = latest(catalog, names)
    except NotFound as e:
        raise NoSuchPath(str(e)) from None
    lo = 0 if since_ns is None else since_ns
    hi = END_OF_TIME_NS if until_ns is None else until_ns
    mode = catalog.attr(ino, at).mode
    if stat.S_ISDIR(mode):
        spans = [(ROOT_INO, 1, LIVE)] if not names else catalog.path_spans(names)
        dirs = [(i, first, end) for i, first, end in spans
                if stat.S_ISDIR(catalog.attr(i, LIVE if end == LIVE else end - 1).mode)]
        prefix = b"/".join(names) + b"/" if names else b""
        return [_file_version(prefix + p, v) for p, v in catalog.versions_under(dirs, since_ns=lo, until_ns=hi)]
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path} is neither a regular file nor a directory: it has no versions")
    return [_file_version(b"/".join(names), v) for v in catalog.versions(ino) if lo <= v.time_ns <= hi]


def _file_version(path: bytes, v: Version) -> FileVersion:
    return FileVersion(show(path), v.vno, datetime.fromtimestamp(v.time_ns / _NS), v.time_ns, v.size,
                       hash_text(v.hash), v.origin)
