"""Restore: bring an old state back as new versions; history is never rewritten.

Restoring a file makes its old content the *next* version of the file now at the destination path,
reusing the old version's chunk list (no data is copied). A file that no longer exists is created
again; when no other live file carries its history on, the new file continues that history, so
`vfs log` shows the old versions followed by the restored one. Restoring a directory does this for
everything it held then, recursively: what exists now but did not exist then is left alone, and a
name that now holds a different kind of thing (a directory where a file was) is skipped and reported.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from vfs.catalog import LIVE, Version
from vfs.errors import Exists, FsError, NotADirectory, UsageError
from vfs.fs.locate import Located, lookup_at, show
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo

_LISTING_BATCH = 512


@dataclass(frozen=True)
class Change:
    """One thing a restore did (or chose not to do), for reporting."""

    action: str  # "restored" (new version of an existing file), "created", "unchanged", "skipped"
    path: str  # volume path of the destination
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:9} {self.path}" + (f"  ({self.detail})" if self.detail else "")


def _nothing(ino: InodeNo) -> None:
    pass


def restore(
    repo: Repository, source: Located, dest: tuple[bytes, ...] | None = None, *,
    before_change: Callable[[InodeNo], None] = _nothing, after_change: Callable[[InodeNo], None] = _nothing,
) -> Iterator[Change]:
    """Restore `source` at `dest` (default: its own path), yielding each change as it is committed.

    Each change is its own short catalog transaction, so a caller on an event loop may checkpoint
    between them. `before_change(ino)` runs before an existing file gets a new version (it may raise
    to refuse, e.g. while the file is open for writing); `after_change(ino)` after it got one.

    If `dest` is an existing directory and the source is not a directory, the source is restored
    inside it under its own name. Missing parent directories of the destination are created.

    Raises:
        UsageError: the source is the root restored to somewhere else, or the destination lies inside it.
        Exists, NotADirectory: the destination exists and is of another kind (for the top item only).
    """
    catalog = repo.catalog
    target = source.names if dest is None else dest
    if dest is not None and source.is_dir and dest[: len(source.names)] == source.names and dest != source.names:
        raise UsageError(f"cannot restore {show(source.names)} into itself ({show(dest)})")
    now = lookup_at(catalog, target, LIVE)
    if dest is not None and now is not None and stat.S_ISDIR(catalog.attr(now).mode) and not source.is_dir:
        if not source.names:
            raise UsageError("cannot restore the root into a directory")
        target = (*target, source.names[-1])
    if not target and not source.is_dir:
        raise UsageError("the root is a directory; cannot restore a file over it")
    if not target:  # the whole volume
        yield from _restore_children(repo, source.ino, source.at, ROOT_INO, (), before_change, after_change)
        return
    parent = yield from _make_parents(repo, target[:-1], source)
    change = _restore_one(repo, source, parent, target, before_change, after_change, top=True)
    if change is not None:
        yield change
    if source.is_dir:
        ino = catalog.lookup(parent, target[-1])
        assert ino is not None
        yield from _restore_children(repo, source.ino, source.at, ino, target, before_change, after_change)


def _make_parents(repo: Repository, names: tuple[bytes, ...], source: Located) -> Generator[Change, None, InodeNo]:
    """The directory `names`, created (mode 0755, the source's owner) where it is missing."""
    catalog = repo.catalog
    ino = ROOT_INO
    for i, name in enumerate(names):
        child = catalog.lookup(ino, name)
        if child is None:
            child = catalog.create(ino, name, stat.S_IFDIR | 0o755, source.uid, source.gid).ino
            yield Change("created", show(names[: i + 1]), "missing parent directory")
        elif not stat.S_ISDIR(catalog.attr(child).mode):
            raise NotADirectory(f"{show(names[: i + 1])} is not a directory")
        ino = child
    return ino


def _same_content(a: Version | None, b: Version | None) -> bool:
    return (a.hash if a and a.size else None) == (b.hash if b and b.size else None)


def _restore_one(
    repo: Repository, src: Located, parent: InodeNo, target: tuple[bytes, ...],
    before_change: Callable[[InodeNo], None], after_change: Callable[[InodeNo], None], *, top: bool,
) -> Change | None:
    """Restore one item (not a directory's contents) as `target[-1]` in `parent`."""
    catalog = repo.catalog
    name, path = target[-1], show(target)
    existing = catalog.lookup(parent, name)
    kind = stat.S_IFMT(src.mode)
    if existing is not None:
        attr = catalog.attr(existing)
        if stat.S_IFMT(attr.mode) != kind:
            what = "a directory" if attr.is_dir else "a file" if stat.S_ISREG(attr.mode) else "another kind of file"
            if top:
                raise Exists(f"{path} exists and is {what}; restore it elsewhere with --to")
            return Change("skipped", path, f"exists now and is {what}")
        if kind == stat.S_IFDIR:
            return None
        if kind == stat.S_IFLNK:
            same = catalog.readlink(existing) == catalog.readlink(src.ino)
            return Change("unchanged" if same else "skipped", path, "" if same else "a different symlink exists now")
        if kind != stat.S_IFREG:
            return Change("unchanged", path)
        current = catalog.version_at(existing)
        if _same_content(current, src.version):
            return Change("unchanged", path)
        try:
            before_change(existing)
        except FsError as e:
            if top:
                raise
            return Change("skipped", path, str(e))
        if src.version is None or src.version.size == 0:
            new = repo.commit_bytes(existing, b"", origin="restore")
        else:
            new = catalog.commit_existing(existing, src.version)
        after_change(existing)
        old = f"version {src.version.vno}" if src.version else "empty"
        return Change("restored", path, f"new version {new.vno}: content of {old}")
    if kind == stat.S_IFREG:
        attr_ = catalog.restore_file(parent, name, src.version, mode=src.mode, uid=src.uid, gid=src.gid)
        return Change("created", path, f"version {attr_.vno}" if attr_.vno else "empty")
    if kind == stat.S_IFLNK:
        catalog.create(parent, name, src.mode, src.uid, src.gid, target=catalog.readlink(src.ino))
    else:
        catalog.create(parent, name, src.mode, src.uid, src.gid, rdev=catalog.attr(src.ino, src.at).rdev)
    return Change("created", path)


def _restore_children(
    repo: Repository, src_dir: InodeNo, at: int, dest_dir: InodeNo, dest: tuple[bytes, ...],
    before_change: Callable[[InodeNo], None], after_change: Callable[[InodeNo], None],
) -> Iterator[Change]:
    catalog = repo.catalog
    after = 0
    while entries := catalog.readdir(src_dir, after, _LISTING_BATCH, at=at):
        after = entries[-1].cookie
        for e in entries:
            attr = catalog.attr(e.ino, at)
            version = catalog.version_at(e.ino, at) if stat.S_ISREG(attr.mode) else None
            src = Located((), e.ino, at, attr.mode, attr.uid, attr.gid, version)
            target = (*dest, e.name)
            change = _restore_one(repo, src, dest_dir, target, before_change, after_change, top=False)
            if change is not None:
                yield change
            if attr.is_dir and (change is None or change.action == "created"):
                child = catalog.lookup(dest_dir, e.name)
                assert child is not None
                yield from _restore_children(repo, e.ino, at, child, target, before_change, after_change)
