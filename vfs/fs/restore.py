"""Restore: bring an old state back as new versions; history is never rewritten.

Restoring a file makes its old content the *next* version of the file now at the destination path,
reusing the old version's chunk list (no data is copied). A file that no longer exists is created
again; when no other live file carries its history on, the new file continues that history, so
`vfs log` shows the old versions followed by the restored one. Restoring a directory does this for
everything it held then, recursively: what exists now but did not exist then is left alone, and a
name that now holds a different kind of thing (a directory where a file was) is skipped and reported.

With *delete*, a directory is made exactly as it was (as `zfs rollback` does for a whole dataset):
what it holds now but did not hold then is *removed* (unlinked: a new commit, so its history stays
reachable under its old name), and a name that holds another kind of thing now is removed and
restored. A *dry run* reports the same changes and writes nothing.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from vfs.catalog import LIVE, Catalog, DirEntry, Version
from vfs.errors import Exists, FsError, NotADirectory, UsageError
from vfs.fs.locate import Located, lookup_at, show
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo

_LISTING_BATCH = 512


@dataclass(frozen=True)
class Change:
    """One thing a restore did, or would do in a dry run (or chose not to do), for reporting."""

    action: str  # "restored" (new version of an existing file), "created", "removed", "unchanged", "skipped"
    path: str  # volume path of the destination
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.action:9} {self.path}" + (f"  ({self.detail})" if self.detail else "")


# A step of the walk: it yields the changes it makes and returns what its docstring says.
Steps = Generator[Change, None, bool]


@dataclass(frozen=True)
class _Into:
    """A directory at the destination to restore a source directory's contents into; `ino` is None for
    one a dry run would create (everything in it would be created too)."""

    ino: InodeNo | None


# Restoring one item returns where its contents go: None when it is not a directory (or was skipped).
ItemSteps = Generator[Change, None, _Into | None]


def _nothing(ino: InodeNo) -> None:
    pass


def restore(
    repo: Repository, source: Located, dest: tuple[bytes, ...] | None = None, *,
    delete: bool = False, dry_run: bool = False,
    before_change: Callable[[InodeNo], None] = _nothing, after_change: Callable[[InodeNo], None] = _nothing,
    remove: Callable[[InodeNo, bytes, bool], None] | None = None,
) -> Iterator[Change]:
    """Restore `source` at `dest` (default: its own path), yielding each change as it is committed.

    Each change is its own short catalog transaction, so a caller on an event loop may checkpoint
    between them. `before_change(ino)` runs before an existing file gets a new version or is removed (it
    may raise to refuse, e.g. while the file is open for writing); `after_change(ino)` after it got one.
    `remove(parent, name, is_dir)` removes a name (default: unlink it in the catalog); `delete` and
    `dry_run` are as the module says.

    If `dest` is an existing directory and the source is not a directory, the source is restored
    inside it under its own name. Missing parent directories of the destination are created.

    Raises:
        UsageError: the source is the root restored to somewhere else, or the destination lies inside it.
        Exists, NotADirectory: the destination exists and is of another kind (for the top item only).
    """
    catalog = repo.catalog

    def unlink(parent: InodeNo, name: bytes, is_dir: bool) -> None:
        catalog.unlink(parent, name, rmdir=is_dir)

    walk = _Walk(repo, delete=delete, dry_run=dry_run, before_change=before_change, after_change=after_change,
                 remove=remove or unlink)
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
        yield from walk.children(source.ino, source.at, ROOT_INO, ())
        return
    parent = yield from walk.make_parents(target[:-1], source)
    into = yield from walk.one(source, parent, target, top=True)
    if into is not None:
        yield from walk.children(source.ino, source.at, into.ino, target)


class _Walk:
    """One restore's walk over the source tree and the destination, with its settings."""

    def __init__(
        self, repo: Repository, *, delete: bool, dry_run: bool, before_change: Callable[[InodeNo], None],
        after_change: Callable[[InodeNo], None], remove: Callable[[InodeNo, bytes, bool], None],
    ) -> None:
        self.repo = repo
        self.catalog: Catalog = repo.catalog
        self.delete = delete
        self.dry_run = dry_run
        self.before_change = before_change
        self.after_change = after_change
        self.remove = remove

    def lookup(self, parent: InodeNo | None, name: bytes) -> InodeNo | None:
        """`name` in `parent` now; None also when `parent` is None: a directory a dry run would create."""
        return None if parent is None else self.catalog.lookup(parent, name)

    def make_parents(self, names: tuple[bytes, ...], source: Located) -> Generator[Change, None, InodeNo | None]:
        """The directory `names`, created (mode 0755, the source's owner) where it is missing (a dry run
        returns None for one it would create)."""
        ino: InodeNo | None = ROOT_INO
        for i, name in enumerate(names):
            child = self.lookup(ino, name)
            if child is None:
                if ino is not None and not self.dry_run:
                    child = self.catalog.create(ino, name, stat.S_IFDIR | 0o755, source.uid, source.gid).ino
                yield Change("created", show(names[: i + 1]), "missing parent directory")
            elif not stat.S_ISDIR(self.catalog.attr(child).mode):
                raise NotADirectory(f"{show(names[: i + 1])} is not a directory")
            ino = child
        return ino

    def one(self, src: Located, parent: InodeNo | None, target: tuple[bytes, ...], *, top: bool) -> ItemSteps:
        """Restore one item (not a directory's contents) as `target[-1]` in `parent`."""
        name, path = target[-1], show(target)
        existing = self.lookup(parent, name)
        kind = stat.S_IFMT(src.mode)
        if existing is not None:
            assert parent is not None
            attr = self.catalog.attr(existing)
            if stat.S_IFMT(attr.mode) != kind:
                what = "a directory" if attr.is_dir else "a file" if stat.S_ISREG(attr.mode) else "another kind of file"
                if top:
                    raise Exists(f"{path} exists and is {what}; restore it elsewhere with --to")
                if not self.delete:
                    yield Change("skipped", path, f"exists now and is {what}")
                    return None
                if not (yield from self.remove_tree(parent, name, existing, target)):
                    return None
                return (yield from self.create(src, parent, target))
            if kind == stat.S_IFDIR:
                return _Into(existing)
            if kind == stat.S_IFLNK:
                if self.catalog.readlink(existing) == self.catalog.readlink(src.ino):
                    yield Change("unchanged", path)
                elif not self.delete:
                    yield Change("skipped", path, "a different symlink exists now")
                elif (yield from self.remove_tree(parent, name, existing, target)):
                    yield from self.create(src, parent, target)
                return None
            if kind != stat.S_IFREG:
                yield Change("unchanged", path)
                return None
            yield from self.new_version(src, existing, path, top=top)
            return None
        return (yield from self.create(src, parent, target))

    def new_version(self, src: Located, existing: InodeNo, path: str, *, top: bool) -> Iterator[Change]:
        """Make `src`'s content the next version of the existing file `existing`."""
        if _same_content(self.catalog.version_at(existing), src.version):
            yield Change("unchanged", path)
            return
        try:
            self.before_change(existing)
        except FsError as e:
            if top:
                raise
            yield Change("skipped", path, str(e))
            return
        old = f"version {src.version.vno}" if src.version else "empty"
        if self.dry_run:
            yield Change("restored", path, f"content of {old}")
            return
        if src.version is None or src.version.size == 0:
            new = self.repo.commit_bytes(existing, b"", origin="restore")
        else:
            new = self.catalog.commit_existing(existing, src.version)
        self.after_change(existing)
        yield Change("restored", path, f"new version {new.vno}: content of {old}")

    def create(self, src: Located, parent: InodeNo | None, target: tuple[bytes, ...]) -> ItemSteps:
        """Create `target[-1]` in `parent` as `src` was."""
        name, path = target[-1], show(target)
        kind = stat.S_IFMT(src.mode)
        if self.dry_run or parent is None:
            content = f"content of version {src.version.vno}" if src.version else "empty"
            yield Change("created", path, content if kind == stat.S_IFREG else "")
            return _Into(None) if kind == stat.S_IFDIR else None
        if kind == stat.S_IFREG:
            attr = self.catalog.restore_file(parent, name, src.version, mode=src.mode, uid=src.uid, gid=src.gid)
            yield Change("created", path, f"version {attr.vno}" if attr.vno else "empty")
            return None
        if kind == stat.S_IFLNK:
            made = self.catalog.create(parent, name, src.mode, src.uid, src.gid, target=self.catalog.readlink(src.ino))
        else:
            made = self.catalog.create(parent, name, src.mode, src.uid, src.gid,
                                       rdev=self.catalog.attr(src.ino, src.at).rdev)
        yield Change("created", path)
        return _Into(made.ino) if kind == stat.S_IFDIR else None

    def remove_tree(self, parent: InodeNo, name: bytes, ino: InodeNo, target: tuple[bytes, ...]) -> Steps:
        """Remove `name` from `parent` (a directory with all it holds, deepest first); False when something
        had to stay (a file open for writing: skipped and reported), and with it the directories above it."""
        path = show(target)
        attr = self.catalog.attr(ino)
        if attr.is_dir:
            emptied = True
            for e in self.listing(ino, LIVE):
                emptied &= yield from self.remove_tree(ino, e.name, e.ino, (*target, e.name))
            if not emptied:
                return False
        elif stat.S_ISREG(attr.mode):
            try:
                self.before_change(ino)
            except FsError as e:
                yield Change("skipped", path, str(e))
                return False
        if not self.dry_run:
            self.remove(parent, name, attr.is_dir)
        yield Change("removed", path)
        return True

    def children(
        self, src_dir: InodeNo, at: int, dest_dir: InodeNo | None, dest: tuple[bytes, ...],
    ) -> Iterator[Change]:
        """Restore what the directory `src_dir` held at commit `at` into `dest_dir`, recursively; with
        delete, first remove from `dest_dir` what `src_dir` did not hold then."""
        held = self.listing(src_dir, at)
        if self.delete and dest_dir is not None:
            names_then = {e.name for e in held}
            for e in self.listing(dest_dir, LIVE):
                if e.name not in names_then:
                    yield from self.remove_tree(dest_dir, e.name, e.ino, (*dest, e.name))
        for e in held:
            attr = self.catalog.attr(e.ino, at)
            version = self.catalog.version_at(e.ino, at) if stat.S_ISREG(attr.mode) else None
            src = Located((), e.ino, at, attr.mode, attr.uid, attr.gid, version)
            target = (*dest, e.name)
            into = yield from self.one(src, dest_dir, target, top=False)
            if into is not None:
                yield from self.children(e.ino, at, into.ino, target)

    def listing(self, ino: InodeNo, at: int) -> list[DirEntry]:
        """Every entry of the directory `ino` at commit `at` (read whole: the walk changes the tree)."""
        out: list[DirEntry] = []
        after = 0
        while entries := self.catalog.readdir(ino, after, _LISTING_BATCH, at=at):
            out.extend(entries)
            after = entries[-1].cookie
        return out


def _same_content(a: Version | None, b: Version | None) -> bool:
    return (a.hash if a and a.size else None) == (b.hash if b and b.size else None)
