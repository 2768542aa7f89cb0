"""Locations the API opens: a store directory (mounted or not), or a remote volume `s3://BUCKET/PREFIX`.

A *location* is what `vfs.open` is given: a store directory (the one `vfs init` made, or the one a
`vfs clone` of a remote made, reading its missing data from the remote as it is read), or a remote
named directly (`s3://...`), opened through a lazy clone in a cache directory (`vfs.api.remote`).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from vfs.errors import NotAStore, UsageError
from vfs.fsutil import tighten_path

log = logging.getLogger(__name__)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def default_store() -> Path:
    """$VFS_HOME, else ~/.local/share/vfs/default.

    vfs's own directory above the latter is private as the stores in it are (their names are their
    owner's business): the library creates it so (0700, as the XDG base directory spec asks), and a
    loose one is tightened here. $VFS_HOME is the store itself; the directories above it are the user's.
    """
    home = os.environ.get("VFS_HOME")
    if home:
        return Path(home)
    store = Path.home() / ".local" / "share" / "vfs" / "default"
    if tighten_path(store.parent):
        log.warning("%s could be listed by other users: made it private to its owner", store.parent)
    return store


def store_directory(location: str | os.PathLike[str] | None) -> Path:
    """The store directory `location` names (None: the default store), made absolute.

    Raises:
        UsageError: a remote URL (see `is_remote`) or another scheme.
        NotAStore: nothing is there, or no store.
    """
    if location is None:
        return default_store().absolute()
    text = os.fspath(location)
    if is_remote(text):
        raise UsageError(f"{text} is a remote volume, not a store directory: open it with vfs.open")
    if _SCHEME.match(text):
        raise UsageError(f"{text}: a location is a store directory or s3://BUCKET/PREFIX")
    path = Path(text).expanduser().absolute()
    if not path.exists():
        raise NotAStore(f"no store at {path}: the directory does not exist (create one with 'vfs init {path}')")
    return path


def is_remote(location: str | os.PathLike[str] | None) -> bool:
    """Whether `location` names a remote volume (`s3://BUCKET/PREFIX`) rather than a store directory."""
    return isinstance(location, str) and location.startswith("s3://")


def default_follow_cache(url: str) -> Path:
    """Where a remote volume is cached when no cache directory is given (by a follower mount and by
    `vfs.open("s3://...")` alike): ~/.cache/vfs/follow/BUCKET_PREFIX, or under $XDG_CACHE_HOME."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = url.removeprefix("s3://").removeprefix("file://").strip("/").replace("/", "_") or "root"
    return base / "vfs" / "follow" / name
