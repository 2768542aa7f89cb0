"""ContentReader: reads of a version's content, through a decoded-chunk cache with read-ahead.

A *content* is what a version's bytes are: its BLAKE3 hash, size and chunk list (`Content`; the
catalog's `Version` is one). Its *layout* is where its chunks start in the content and where their
entries are in the packs. The first read of a content resolves its layout with one call of
`locate_all` (one catalog query, given by the caller: the store knows nothing of SQL) and keeps it
in a small LRU keyed by the content hash, so that later reads of it make no catalog trip at all.

Why a kept layout stays right: a version is immutable, and a chunk's entry moves only when gc
repacks it (`Catalog.move_chunks`) or fsck's repair points it to an intact copy. Repair runs on an
unmounted store, where there is no reader. gc runs inside the daemon with commits paused but reads
going on: it moves the rows only once the copies are durable, and deletes the old pack only after
the move is committed, through `ChunkStore.delete`, which bumps `ChunkStore.generation` before the
file goes. A read resolves the layout again when the generation changed since it was resolved, and a
read that raced the deletion (it took the old location just before) fails on the missing pack (or
on the descriptor closed under it), sees the generation changed, and is retried once with fresh
locations; with a remote, the old entry may instead be fetched back from the remote's pack object,
which still gives the right bytes. Until the deletion the old entry is intact, so a stale
location read before it gives the right bytes too (verified against the chunk id, as every read is).
Evicting an uploaded pack changes no location: its entries are fetched back when read
(`vfs.store.partial`).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from vfs.errors import CorruptChunk, MissingChunk
from vfs.store.chunkstore import ChunkStore
from vfs.store.packs import ChunkLocation
from vfs.types import ChunkId

# Decoded chunks kept for reads that straddle chunk boundaries (a few chunks of each open file).
_DECODED_CACHE_BYTES = 32 * 1024 * 1024
_INLINE_READ_BYTES = 128 * 1024  # a stored chunk this small is read without a thread hop
_READ_AHEAD_CHUNKS = 8  # decoded ahead of a sequential reader: about 5 MiB
_REMOTE_READ_AHEAD_CHUNKS = 16  # the same, of chunks fetched from the remote (which takes longer) ...
_REMOTE_READ_AHEAD_BATCH = 8  # ... asked for at least this many at a time (few, bigger ranged reads)
_LAYOUTS = 64  # contents whose layout is kept (reads come in runs over a few open files)
_LAYOUT_CHUNKS = 1 << 20  # and at most this many chunk locations in all (~150 MiB), but for the newest
# Without `wait` (perhaps on an event loop), a layout not kept yet is resolved only up to this many
# chunks (one short query, well under a millisecond); a bigger one is left to the thread `read` runs in.
_READY_RESOLVE_CHUNKS = 256

# What a read from a location into a pack gc deleted meanwhile may raise.
_STALE = (MissingChunk, CorruptChunk, OSError)

Locate = Callable[[Sequence[ChunkId]], list[ChunkLocation]]


class Content(Protocol):
    """What the reader needs of a version."""

    @property
    def hash(self) -> bytes: ...  # BLAKE3 of the whole content: the key of its layout

    @property
    def size(self) -> int: ...

    @property
    def chunks(self) -> Sequence[tuple[ChunkId, int]]: ...  # chunk ids and plain lengths, in order


@dataclass(frozen=True, slots=True)
class _Layout:
    starts: list[int]  # offset in the content at which each chunk starts
    locs: list[ChunkLocation]  # each chunk's entry
    generation: int  # ChunkStore.generation when the locations were resolved


class ContentReader:
    """Reads contents from `chunks`, locating their chunks with `locate_all`. Thread-safe."""

    def __init__(self, chunks: ChunkStore, locate_all: Locate) -> None:
        self._chunks = chunks
        self._locate_all = locate_all
        self._cache_lock = threading.Lock()
        self._layouts: OrderedDict[bytes, _Layout] = OrderedDict()
        self._decoded: OrderedDict[ChunkId, bytes] = OrderedDict()
        self._decoded_bytes = 0
        self._decoding: dict[ChunkId, Future[bytes]] = {}  # read-ahead under way
        # content hash -> (end of its last read, chunks up to which read-ahead was announced)
        self._read_ends: OrderedDict[bytes, tuple[int, int]] = OrderedDict()

    def forget_layouts(self) -> None:
        """Drop the chunk locations resolved so far: the catalog was replaced (a follower's refresh), and a
        chunk may have moved to another pack (the writer's gc). Decoded chunks stay: they are named by
        their content."""
        with self._cache_lock:
            self._layouts.clear()

    def read(self, content: Content, offset: int, size: int, *, wait: bool = True) -> bytes | None:
        """Bytes [offset, offset+size) of `content` (short at its end).

        Without `wait`: only if every chunk needed is decoded in memory already, or is one small
        chunk of a local pack (one short pread); else None. It then never waits on the network or a
        long read, so an event loop may call it and send only misses to a thread.
        """
        layout = self._layout(content, resolve=wait or len(content.chunks) <= _READY_RESOLVE_CHUNKS)
        if layout is None:
            return None
        try:
            return self._read(content, layout, offset, size, wait=wait)
        except _STALE:
            if self._chunks.generation == layout.generation:
                raise  # real damage, not a pack gc deleted after moving its chunks
        fresh = self._layout(content, resolve=wait)
        return None if fresh is None else self._read(content, fresh, offset, size, wait=wait)

    def iter_content(self, content: Content) -> Iterator[bytes]:
        """The whole content, chunk by chunk (decoded in parallel)."""
        done = 0
        while True:
            layout = self._layout(content, resolve=True)
            assert layout is not None
            try:
                for data in self._chunks.read_chunks(layout.locs[done:]):
                    yield data
                    done += 1
                return
            except _STALE:
                if self._chunks.generation == layout.generation:
                    raise  # (a pack deleted by gc meanwhile: go on from fresh locations)

    def _layout(self, content: Content, *, resolve: bool) -> _Layout | None:
        """The kept layout of `content` if it is current; else resolved now (None without `resolve`)."""
        generation = self._chunks.generation
        with self._cache_lock:
            layout = self._layouts.get(content.hash)
            if layout is not None and layout.generation == generation:
                self._layouts.move_to_end(content.hash)
                return layout
        if not resolve:
            return None
        # The generation is taken before the query: a pack deleted meanwhile makes the layout stale.
        locs = self._locate_all([cid for cid, _ in content.chunks])
        starts = [0, *itertools.accumulate(n for _, n in content.chunks)][:-1]
        layout = _Layout(starts, locs, generation)
        with self._cache_lock:
            self._layouts[content.hash] = layout
            self._layouts.move_to_end(content.hash)
            kept = sum(len(x.locs) for x in self._layouts.values())
            while len(self._layouts) > 1 and (len(self._layouts) > _LAYOUTS or kept > _LAYOUT_CHUNKS):
                kept -= len(self._layouts.popitem(last=False)[1].locs)
        return layout

    def _read(self, content: Content, layout: _Layout, offset: int, size: int, *, wait: bool) -> bytes | None:
        end = min(offset + size, content.size)
        if offset >= end:
            return b""
        starts = layout.starts
        first = bisect.bisect_right(starts, offset) - 1
        last = bisect.bisect_left(starts, end)
        locs = layout.locs[first:last]
        if wait:
            chunks = self._decoded_chunks(locs)
        else:
            found = self._cached(locs) or self._read_small_local(locs)
            if found is None:
                return None  # read-ahead is left to the `read` that follows
            chunks = found
        self._read_ahead(content.hash, layout, offset, end, last)
        parts = []
        for i, data in enumerate(chunks, first):
            lo, hi = max(offset - starts[i], 0), min(end - starts[i], len(data))
            parts.append(memoryview(data)[lo:hi])
        return b"".join(parts)  # the one copy of the bytes returned

    def _read_ahead(self, key: bytes, layout: _Layout, offset: int, end: int, next_chunk: int) -> None:
        """A read that starts the content or goes on where the last one of it ended is sequential:
        decode the next chunks in the background, so that the reads to come find them in memory.

        Ahead of chunks whose pack is on the remote, further and in batches: each batch is fetched with
        one or two ranged reads instead of one per chunk (a request costs a round trip, and money).
        """
        count = len(layout.locs)
        ahead, batch = _READ_AHEAD_CHUNKS, 1
        if next_chunk < count and not self._chunks.is_local(layout.locs[next_chunk].pack):
            ahead, batch = _REMOTE_READ_AHEAD_CHUNKS, _REMOTE_READ_AHEAD_BATCH
        with self._cache_lock:
            last_end, announced = self._read_ends.get(key, (-1, 0))
            sequential = offset in (0, last_end)
            start = max(next_chunk, announced) if sequential else next_chunk
            stop = min(next_chunk + ahead, count) if sequential else next_chunk
            if stop - start < batch and stop < count:
                stop = start  # not yet: wait until a whole batch is due (or the content's end is reached)
            self._read_ends[key] = (end, max(stop, announced if sequential else 0))
            self._read_ends.move_to_end(key)
            if len(self._read_ends) > 64:
                self._read_ends.popitem(last=False)
        with self._cache_lock:
            todo = list({loc.chunk_id: loc for loc in layout.locs[start:stop]
                         if loc.chunk_id not in self._decoded and loc.chunk_id not in self._decoding}.values())
            # All at once: chunks of a pack on the remote are then fetched with few ranged reads, in parallel.
            started = self._chunks.read_chunks_soon(todo) if todo else []
            for loc, future in zip(todo, started, strict=True):
                self._decoding[loc.chunk_id] = future
        for loc, future in zip(todo, started, strict=True):
            future.add_done_callback(functools.partial(self._decoded_soon, loc.chunk_id))

    def _decoded_soon(self, cid: ChunkId, future: Future[bytes]) -> None:
        """A background decode finished: keep its bytes (a failure is left to a reader to meet)."""
        with self._cache_lock:
            self._decoding.pop(cid, None)
            if not future.cancelled() and future.exception() is None:
                self._keep(cid, future.result())

    def _keep(self, cid: ChunkId, data: bytes) -> None:
        """Add decoded bytes to the cache (holding `_cache_lock`), dropping the least recently used."""
        if cid not in self._decoded:
            self._decoded[cid] = data
            self._decoded_bytes += len(data)
        while self._decoded_bytes > _DECODED_CACHE_BYTES:
            _, old = self._decoded.popitem(last=False)
            self._decoded_bytes -= len(old)

    def _read_small_local(self, locs: list[ChunkLocation]) -> list[bytes] | None:
        """A small chunk from a local pack, read and verified at once (a short pread, as a small file's
        first read is: cheaper than a thread hop); None for bigger reads or a pack on the remote."""
        if len(locs) != 1:
            return None
        loc = locs[0]
        if loc.stored_len > _INLINE_READ_BYTES:
            return None
        try:
            data = self._chunks.read_chunk(loc, fetch=False)
        except MissingChunk:
            return None
        with self._cache_lock:
            self._keep(loc.chunk_id, data)
        return [data]

    def _cached(self, locs: list[ChunkLocation]) -> list[bytes] | None:
        """The chunks from the decoded cache, or None if one is not there."""
        with self._cache_lock:
            if not all(loc.chunk_id in self._decoded for loc in locs):
                return None
            for loc in locs:
                self._decoded.move_to_end(loc.chunk_id)
            return [self._decoded[loc.chunk_id] for loc in locs]

    def _decoded_chunks(self, locs: list[ChunkLocation]) -> list[bytes]:
        """Plain bytes of chunks: from the cache of recently decoded ones, from a background decode
        under way, else read and verified from packs (in parallel).

        Chunks straddle read requests (a 1 MiB read-ahead over ~640 KiB chunks), so without the
        cache every other chunk would be read, decompressed and hashed twice.
        """
        found: dict[ChunkId, bytes] = {}
        waiting: dict[ChunkId, Future[bytes]] = {}
        with self._cache_lock:
            for loc in locs:
                cid = loc.chunk_id
                if cid in self._decoded:
                    self._decoded.move_to_end(cid)
                    found[cid] = self._decoded[cid]
                elif cid in self._decoding:
                    waiting[cid] = self._decoding[cid]
        for cid, future in waiting.items():
            with contextlib.suppress(Exception):  # a failed background decode is retried below, to report it here
                found[cid] = future.result()
        missing = list({loc.chunk_id: loc for loc in locs if loc.chunk_id not in found}.values())
        if missing:
            fresh = dict(zip((loc.chunk_id for loc in missing), self._chunks.read_chunks(missing), strict=True))
            found.update(fresh)
            with self._cache_lock:
                for cid, data in fresh.items():
                    self._keep(cid, data)
        return [found[loc.chunk_id] for loc in locs]
