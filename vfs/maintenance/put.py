"""Put: local files and folders become new versions in the volume; names are removed (a new commit each).

Both the daemon (a mounted store, asked through the control socket) and an unmounted store's writer
(its lock held) go through here, by `Maintenance.put` and `Maintenance.remove`.

A *put item* is a local path and the volume path it becomes: a regular file becomes the next version
of the file at the destination (created, with its missing parent directories, when need be), a
directory an empty directory. A file whose content the destination holds already makes no version and
stores nothing: it is *unchanged* when it has the size and modification time the destination has (as
rsync decides), or else when its BLAKE3 hash is the current version's (read and compared before
anything is stored). A file being written in the mount is *skipped* (its staging file would be committed
over the put) and reported.

Items go in batches (BATCH_BYTES, BATCH_FILES): the event loop looks the destinations up and creates
missing directories; a thread checks, hashes and ingests the batch's files, and another makes their
chunks durable with one fsync; back on the loop, the new files of each directory are created in one transaction
(`vfs.catalog.bulk`) and the batch's versions committed in one more (each version still a commit of its
own). These overlap: while a batch is ingested, the loop looks the next one up, the one before is
synced and the one before that committed. So the chunks are durable before any version
points to them, and the loop never waits on a file's bytes.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vfs.catalog import Catalog
from vfs.catalog.bulk import bulk_create_files
from vfs.errors import IsADirectory, NotADirectory, NotFound, UsageError
from vfs.fs.locate import show
from vfs.repository import Repository
from vfs.store import Ingested
from vfs.store.codec import file_hasher
from vfs.types import ROOT_INO, Attr, InodeNo

log = logging.getLogger(__name__)

BATCH_BYTES = 64 << 20  # bytes of changed files ingested between two commits (one fsync of the packs)
BATCH_FILES = 256
_READ = 1 << 20

Advance = Callable[[int, int], None]  # (bytes, files) just done: progress


def never_written(ino: InodeNo) -> bool:
    return False


def nothing_cached(ino: InodeNo) -> None:
    pass


def no_progress(nbytes: int, files: int) -> None:
    pass


@dataclass(frozen=True)
class PutItem:
    """`source` (a local path) becomes `dest` (a volume path); `is_dir`: an (empty) directory."""

    source: str  # as os functions take it ("": none, for a directory made without one)
    dest: tuple[bytes, ...]
    is_dir: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "dest": show(self.dest), "dir": self.is_dir}

    @classmethod
    def from_json(cls, item: Any) -> PutItem:
        if not (isinstance(item, dict) and isinstance(item.get("source"), str) and isinstance(item.get("dest"), str)):
            raise UsageError("a put item needs a source and a dest (strings)")
        from vfs.fs.locate import volume_names

        return cls(item["source"], volume_names(item["dest"]), bool(item.get("dir")))


@dataclass
class PutResult:
    """What a put did, by volume path."""

    created: list[str] = field(default_factory=list)  # new files (and directories)
    updated: list[str] = field(default_factory=list)  # files that got a new version
    unchanged: list[str] = field(default_factory=list)  # files whose content the volume held already
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    stored_bytes: int = 0  # bytes written to packs (compressed, new chunks only)
    # (directory, name, inode) of files that got a new version: a mount's kernel must drop its entries of
    # them, or it would keep the size it caches (with the writeback cache it trusts its own); not sent.
    replaced: list[tuple[InodeNo, bytes, InodeNo]] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": [list(s) for s in self.skipped], "stored_bytes": self.stored_bytes}

    @classmethod
    def from_json(cls, answer: dict[str, Any]) -> PutResult:
        return cls(list(answer["created"]), list(answer["updated"]), list(answer["unchanged"]),
                   [(str(p), str(w)) for p, w in answer["skipped"]], int(answer["stored_bytes"]))

    def add(self, other: PutResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.stored_bytes += other.stored_bytes
        self.replaced += other.replaced


@dataclass
class _File:
    """One file of a batch: where it goes, what is there now, and (after the thread) what to commit."""

    item: PutItem
    parent: InodeNo
    existing: InodeNo | None
    size: int = 0  # of the existing file now
    mtime_ns: int = 0
    st: os.stat_result | None = None
    ingested: Ingested | None = None  # None: unchanged


async def put(
    repo: Repository, items: Sequence[PutItem], *, uid: int, gid: int, checksum: bool = False,
    being_written: Callable[[InodeNo], bool] = never_written, changed: Callable[[InodeNo], None] = nothing_cached,
    progress: Advance = no_progress,
) -> PutResult:
    """Put `items` in order (see the module's docstring); new files and directories get `uid`/`gid`.

    `checksum` hashes every file of the destination's size instead of trusting an equal mtime.
    `being_written(ino)` says a file is open for writing in the mount (it is skipped); `changed(ino)`
    is called after an inode changed (the mount drops what the kernel caches of it).

    Raises:
        NotFound: a source does not exist.
        NotADirectory, IsADirectory: a destination (or a directory on the way) is of another kind.
    """
    import trio  # here: the API imports this module to read and must not pay for trio

    result = PutResult()
    dirs: dict[tuple[bytes, ...], InodeNo] = {}  # directories of this put, looked up or made once
    to_ingest, ingest_receive = trio.open_memory_channel[list[_File]](1)
    to_sync, sync_receive = trio.open_memory_channel[tuple[list[_File], bool]](1)
    to_commit, commit_receive = trio.open_memory_channel[list[_File]](1)

    async def ingest_in_order() -> None:
        # A thread reads and stores one batch while the loop looks the next one up and commits the last.
        async with to_sync:
            async for batch in ingest_receive:
                wrote = await trio.to_thread.run_sync(_ingest_batch, repo, batch, checksum, progress)
                await to_sync.send((batch, wrote))

    async def sync_in_order() -> None:
        # Another thread makes a batch's chunks durable while the next one is stored: a sync covers
        # every entry appended before it (PackWriter.sync), and only then may the catalog point to them.
        async with to_commit:
            async for batch, wrote in sync_receive:
                if wrote:
                    await trio.to_thread.run_sync(repo.chunks.sync)
                await to_commit.send(batch)

    async def commit_in_order() -> None:
        async for ingested in commit_receive:
            _commit(repo.catalog, ingested, uid, gid, being_written, changed, result)
            await trio.lowlevel.checkpoint()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commit_in_order)
            nursery.start_soon(sync_in_order)
            nursery.start_soon(ingest_in_order)
            await _produce(repo, items, uid, gid, changed, result, dirs, to_ingest.send, to_ingest)
    except BaseExceptionGroup as group:  # one error in one line for the caller, as everywhere
        raise _sole(group) from None
    return result


async def _produce(
    repo: Repository, items: Sequence[PutItem], uid: int, gid: int, changed: Callable[[InodeNo], None],
    result: PutResult, dirs: dict[tuple[bytes, ...], InodeNo], ingest: Callable[[list[_File]], Awaitable[None]],
    send: Any,
) -> None:
    """Look the items' destinations up (directories made) and hand them to `ingest` in batches."""
    import trio

    listings: dict[InodeNo, dict[bytes, Attr]] = {}

    async with send:
        batch: list[_File] = []
        pending = 0
        for n, item in enumerate(items):
            if n % 64 == 0:
                await trio.lowlevel.checkpoint()
            if item.is_dir:
                _directory(repo.catalog, item.dest, uid, gid, changed, result, dirs, mode=_dir_mode(item.source))
                continue
            if not item.dest:
                raise IsADirectory("the volume's root is a directory: put a file at a path inside it")
            parent = _directory(repo.catalog, item.dest[:-1], uid, gid, changed, result, dirs)
            attr = _entry(repo.catalog, parent, item.dest[-1], listings, many=len(items) > 1)
            existing = None if attr is None else attr.ino
            size, mtime = 0, 0
            if attr is not None:
                if attr.is_dir:
                    raise IsADirectory(f"{show(item.dest)} is a directory in the volume")
                if not stat.S_ISREG(attr.mode):
                    result.skipped.append((show(item.dest), "not a regular file in the volume"))
                    continue
                size, mtime = attr.size, attr.mtime_ns
            batch.append(_File(item, parent, existing, size, mtime))
            pending += size
            if pending >= BATCH_BYTES or len(batch) >= BATCH_FILES:
                await ingest(batch)
                batch, pending = [], 0
        if batch:
            await ingest(batch)


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a group holds (nested or not); the group itself when it holds several."""
    leaves = list(_leaves(group))
    return leaves[0] if len(leaves) == 1 else group


def _leaves(e: BaseException) -> Iterator[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        for inner in e.exceptions:
            yield from _leaves(inner)
    else:
        yield e


def _entry(catalog: Catalog, parent: InodeNo, name: bytes, listings: dict[InodeNo, dict[bytes, Attr]], *,
           many: bool) -> Attr | None:
    """The attributes of what `name` in `parent` names now: for a put of many files, from one listing of
    `parent` with its attributes (read once; a query per file made an unchanged put of small files
    cost 18% of the first)."""
    if not many:
        ino = catalog.lookup(parent, name)
        return None if ino is None else catalog.attr(ino)
    names = listings.get(parent)
    if names is None:
        names = listings[parent] = {}
        after = 0
        while entries := catalog.readdir_attrs(parent, after, 4096):
            names.update((e.name, attr) for e, attr in entries)
            after = entries[-1][0].cookie
    return names.get(name)


def _dir_mode(source: str) -> int:
    if not source:
        return 0o755
    try:
        return stat.S_IMODE(os.stat(source).st_mode)
    except OSError:
        return 0o755


def _directory(
    catalog: Catalog, names: tuple[bytes, ...], uid: int, gid: int, changed: Callable[[InodeNo], None],
    result: PutResult, known: dict[tuple[bytes, ...], InodeNo], *, mode: int = 0o755,
) -> InodeNo:
    """The directory `names`, created where missing (NotADirectory where a file is in the way); `known`
    remembers those this put found or made."""
    if names in known:
        return known[names]
    ino = ROOT_INO
    for i, name in enumerate(names):
        child = catalog.lookup(ino, name)
        if child is None:
            child = catalog.create(ino, name, stat.S_IFDIR | (mode if i == len(names) - 1 else 0o755), uid, gid).ino
            changed(ino)
            result.created.append(show(names[: i + 1]) + "/")
        elif not catalog.attr(child).is_dir:
            raise NotADirectory(f"{show(names[: i + 1])} is not a directory in the volume")
        ino = child
    known[names] = ino
    return ino


def _commit(
    catalog: Catalog, batch: list[_File], uid: int, gid: int, being_written: Callable[[InodeNo], bool],
    changed: Callable[[InodeNo], None], result: PutResult,
) -> None:
    """Create the batch's new files and commit its versions (its chunks are durable: `_ingest_batch`)."""
    commits: list[tuple[InodeNo, Ingested, int | None, int | None]] = []
    new: dict[tuple[InodeNo, int], list[_File]] = {}  # new files by (directory, mode): made together
    # No checkpoint in here: between checking a file (being written?) and committing its version.
    for f in batch:
        path = show(f.item.dest)
        assert f.st is not None
        if f.ingested is None:
            result.unchanged.append(path)
        elif f.existing is None:
            new.setdefault((f.parent, stat.S_IMODE(f.st.st_mode)), []).append(f)
        elif being_written(f.existing):
            result.skipped.append((path, "open for writing in the mount"))
        else:
            result.updated.append(path)
            result.replaced.append((f.parent, f.item.dest[-1], f.existing))
            commits.append((f.existing, f.ingested, f.st.st_mtime_ns, None))
            result.stored_bytes += f.ingested.stored_bytes
    for (parent, mode), files in new.items():
        # One transaction per directory (one commit); their versions follow with the others below.
        inos = bulk_create_files(catalog, parent, [(f.item.dest[-1], []) for f in files], mode=stat.S_IFREG | mode,
                                 uid=uid, gid=gid, origin="put")
        changed(parent)
        for f, ino in zip(files, inos, strict=True):
            assert f.ingested is not None and f.st is not None
            result.created.append(show(f.item.dest))
            if f.ingested.size:  # an empty file is a file without versions, as `touch` makes it
                commits.append((ino, f.ingested, f.st.st_mtime_ns, None))
                result.stored_bytes += f.ingested.stored_bytes
    if commits:
        catalog.commit_versions(commits, origin="put")
        for ino, *_ in commits:
            changed(ino)


def _ingest_batch(repo: Repository, batch: list[_File], checksum: bool, progress: Advance) -> bool:
    """In a thread: decide which files changed (size and mtime, else hash) and ingest those; whether new
    chunks were written (not yet durable: the caller syncs the store before committing)."""
    wrote = False
    for f in batch:
        try:
            f.st = os.stat(f.item.source)
        except FileNotFoundError:
            raise NotFound(f"{f.item.source}: no such file") from None
        if not stat.S_ISREG(f.st.st_mode):
            raise UsageError(f"{f.item.source} is not a regular file")
        if _unchanged(repo.catalog, f, checksum):
            progress(f.st.st_size, 1)
            continue
        f.ingested = repo.chunks.ingest(f.item.source, repo.catalog.has_chunk, sync=False)
        wrote = wrote or bool(f.ingested.new)
        progress(f.st.st_size, 1)
    return wrote


def _unchanged(catalog: Catalog, f: _File, checksum: bool) -> bool:
    assert f.st is not None
    if f.existing is None or f.st.st_size != f.size:
        return False
    if f.size == 0 or (not checksum and f.st.st_mtime_ns == f.mtime_ns):
        return True
    current = catalog.version_at(f.existing)
    if current is None:
        return False
    hasher = file_hasher()
    with open(f.item.source, "rb") as src:
        while data := src.read(_READ):
            hasher.update(data)
    return bool(hasher.digest() == current.hash)


def remove(
    catalog: Catalog, names: tuple[bytes, ...], *, recursive: bool,
    unlink: Callable[[InodeNo, bytes, bool], None] | None = None,
) -> list[str]:
    """Remove the volume path `names` (a directory with all it holds when `recursive`, deepest first);
    returns the paths removed. Their history stays (each removal is a new commit).

    `unlink(parent, name, is_dir)` removes one name (default: in the catalog; the daemon passes its
    filesystem's, which lets go of open files as the kernel's unlink does).

    Raises:
        NotFound: nothing has that path now.
        IsADirectory: it is a directory and not `recursive`.
    """
    if not names:
        raise UsageError("cannot remove the volume's root")

    def catalog_unlink(parent: InodeNo, name: bytes, is_dir: bool) -> None:
        catalog.unlink(parent, name, rmdir=is_dir)

    drop = unlink or catalog_unlink
    parent: InodeNo | None = ROOT_INO
    for name in names[:-1]:
        assert parent is not None
        parent = catalog.lookup(parent, name)
        if parent is None:
            break
    ino = None if parent is None else catalog.lookup(parent, names[-1])
    if parent is None or ino is None:
        raise NotFound(f"{show(names)} does not exist in the volume")
    if catalog.attr(ino).is_dir and not recursive:
        raise IsADirectory(f"{show(names)} is a directory: remove it recursively")
    removed: list[str] = []
    _remove_tree(catalog, parent, names, ino, drop, removed)
    return removed


def _remove_tree(
    catalog: Catalog, parent: InodeNo, names: tuple[bytes, ...], ino: InodeNo,
    drop: Callable[[InodeNo, bytes, bool], None], removed: list[str],
) -> None:
    is_dir = catalog.attr(ino).is_dir
    if is_dir:
        while entries := catalog.readdir(ino, 0, 512):
            for e in entries:
                _remove_tree(catalog, ino, (*names, e.name), e.ino, drop, removed)
    drop(parent, names[-1], is_dir)
    removed.append(show(names) + ("/" if is_dir else ""))
