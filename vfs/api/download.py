"""`Volume.get` of a directory: every file of a tree written out as it was, at the store's read rate.

A tree of small files is bound by what each file costs, not by its bytes: a catalog query for its
version and another for its chunks' locations, a wait on the store's decoding pool, five system calls.
So the files' chunks go as one *stream*: versions and locations are resolved for a batch of files at a
time (BATCH_FILES), and every chunk of every file is read by the chunk store's `read_chunks` in tree
order (the order `put` stored them in, so packs are read front to back), its disk reads announced ahead
and its decoding spread over the pool. Files are written as their chunks arrive: small ones (whose
creation costs more than their bytes) by a few writer threads at once, big ones by the stream's thread.
Nothing waits per file.

A chunk that moved after its location was resolved (a mounted volume's gc repacked it meanwhile) fails
the stream with the pack missing or changed; the files not yet written are then written one by one
(`Repository.iter_content`, which resolves the locations afresh) instead.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vfs.api.reading import TreeItem
from vfs.catalog import Version
from vfs.errors import CorruptChunk, MissingChunk
from vfs.repository import Repository
from vfs.store.packs import ChunkLocation

BATCH_FILES = 256  # files whose versions and locations one round of queries resolves
# Creating a file costs more than writing a small one (~0.1-0.3 ms on ext4): small files are written by
# a few threads at once, up to WRITE_BEHIND_BYTES behind the stream; bigger ones by the stream's thread.
SMALL_FILE = 4 << 20
WRITERS = 4
WRITE_BEHIND_BYTES = 64 << 20

Advance = Callable[[int, int], None]  # (bytes, files) written: progress


@dataclass
class _File:
    item: TreeItem
    local: bytes  # its local path (bytes: a Path per file cost as much as writing a small one)
    version: Version | None = None  # None: an empty file


def write_tree(repo: Repository, items: list[TreeItem], at: int, target: Path, advance: Advance) -> None:
    """Write the tree `items` (paths below the existing directory `target`, parents first) as it was at
    commit `at`: its directories, and its regular files with their content, mode and modification time
    (symlinks and special files are not written out)."""
    top = os.fsencode(target)
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="vfs-get") as writers:
        _make_directories(writers, [os.path.join(top, *i.names) for i in items if stat.S_ISDIR(i.mode)])
        todo = deque(_File(i, os.path.join(top, *i.names)) for i in items if stat.S_ISREG(i.mode))
        queued: deque[_File] = deque()  # files whose chunks are in the stream, in order
        try:
            _stream(repo, todo, queued, at, writers, advance)
            return
        except (MissingChunk, CorruptChunk):
            pass
    # A location went stale under the stream: resolve afresh, file by file, from the one it was at (a
    # real fault fails there again, and is raised from there).
    for f in [*queued, *todo]:
        version = f.version if f.version is not None else repo.catalog.version_at(f.item.ino, at)
        write_file(repo, version, f.local, f.item.mode, advance)


def _make_directories(pool: ThreadPoolExecutor, paths: list[bytes]) -> None:
    """Make `paths` (parents first), those of one depth at once: a directory is a disk write, and the
    file system makes those of different parents in parallel."""
    by_depth: dict[int, list[bytes]] = {}
    for path in paths:
        by_depth.setdefault(path.count(b"/"), []).append(path)
    for depth in sorted(by_depth):
        for _ in pool.map(_mkdir, by_depth[depth]):
            pass


def _mkdir(path: bytes) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path)


def _stream(repo: Repository, todo: deque[_File], queued: deque[_File], at: int, writers: ThreadPoolExecutor,
            advance: Advance) -> None:
    def locations() -> Iterator[ChunkLocation]:
        # Pulled by read_chunks a little ahead of the writing below (it runs in this thread).
        while todo:
            batch = [todo.popleft() for _ in range(min(BATCH_FILES, len(todo)))]
            ids = []
            for f in batch:
                f.version = repo.catalog.version_at(f.item.ino, at) if f.item.has_content else None
                if f.version is not None:
                    ids += [cid for cid, _ in f.version.chunks]
            queued.extend(batch)
            yield from repo.catalog.locate_all(ids)

    written: deque[tuple[Future[None], int]] = deque()  # small files handed to the writers, and their sizes
    held = 0  # bytes of those not written yet

    def write(f: _File, parts: list[bytes]) -> None:
        nonlocal held
        size = sum(map(len, parts))
        written.append((writers.submit(_write_whole, f, parts, advance), size))
        held += size
        while written and (held > WRITE_BEHIND_BYTES or written[0][0].done()):
            future, size = written.popleft()
            future.result()
            held -= size

    def write_empty() -> None:
        while queued and (queued[0].version is None or not queued[0].version.chunks):
            write(queued.popleft(), [])

    fd, left, parts = -1, 0, list[bytes]()
    chunks = repo.chunks.read_chunks(locations())
    try:
        for data in chunks:
            if left == 0:  # the first chunk of the next file with content
                write_empty()
                version = queued[0].version
                assert version is not None
                left = len(version.chunks)
                if version.size > SMALL_FILE:  # written as it comes, by this thread
                    fd = _create(queued[0].local)
            if fd >= 0:
                _write_all(fd, data)
                advance(len(data), 0)
            else:
                parts.append(data)
            left -= 1
            if left == 0 and fd >= 0:
                _finish(fd, queued.popleft(), advance)
                fd = -1
            elif left == 0:
                write(queued.popleft(), parts)
                parts = []
        write_empty()  # the stream pulled every batch: what is left has no chunks
        assert not queued and not todo
    finally:
        if fd >= 0:
            os.close(fd)
        getattr(chunks, "close", lambda: None)()  # a generator: let go of the reads still under way
        for future, _ in written:  # those files left the queue: a failure to write one is raised here
            future.result()


def _write_whole(f: _File, parts: list[bytes], advance: Advance) -> None:
    fd = _create(f.local)
    try:
        for data in parts:
            _write_all(fd, data)
    except BaseException:
        os.close(fd)
        raise
    advance(sum(map(len, parts)), 0)
    _finish(fd, f, advance)


def _create(local: bytes | Path) -> int:
    return os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _finish(fd: int, f: _File, advance: Advance) -> None:
    """Give the written file its mode and time, and close it."""
    try:
        os.fchmod(fd, stat.S_IMODE(f.item.mode) or 0o644)
        if f.version is not None:
            os.utime(fd, ns=(f.version.mtime_ns, f.version.mtime_ns))
    finally:
        os.close(fd)
    advance(0, 1)


def write_file(repo: Repository, version: Version | None, local: bytes | Path, mode: int,
               advance: Advance | None) -> None:
    """Write `version` (None: empty) to the local file `local` with `mode` and the version's mtime."""
    fd = _create(local)
    try:
        if version is not None:
            for data in repo.iter_content(version):
                _write_all(fd, data)
                if advance is not None:
                    advance(len(data), 0)
        os.fchmod(fd, stat.S_IMODE(mode) or 0o644)
        if version is not None:
            os.utime(fd, ns=(version.mtime_ns, version.mtime_ns))
    finally:
        os.close(fd)
    if advance is not None:
        advance(0, 1)
