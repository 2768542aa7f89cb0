"""Locations the API opens: a store directory (mounted or not); `s3://BUCKET/PREFIX` is refused for now.

A *location* is what `vfs.open` is given. Today it is a store directory: the one `vfs init` made, or the
one a `vfs clone` of a remote made (reading its missing data from the remote as it is read). A remote
named directly (`s3://...`) will open as a read-only follower, or a writer holding the lease, once
the several-machines work lands; until then it is refused with a message saying what to do instead.
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
        UsageError: a remote URL (not supported yet) or another scheme.
        NotAStore: nothing is there, or no store.
    """
    if location is None:
        return default_store().absolute()
    text = os.fspath(location)
    if text.startswith("s3://"):
        raise UsageError(f"{text}: opening a remote directly is not supported yet; clone it first"
                         " ('vfs clone s3://BUCKET/PREFIX STORE') and open the store directory")
    if _SCHEME.match(text):
        raise UsageError(f"{text}: a location is a store directory (or, later, s3://BUCKET/PREFIX)")
    path = Path(text).expanduser().absolute()
    if not path.exists():
        raise NotAStore(f"no store at {path}: the directory does not exist (create one with 'vfs init {path}')")
    return path
