"""ChunkStore: turn a staging file into stored chunks, and read chunks back verified.

Ingest is a pipeline over a staging file read in windows of a few MiB: the calling thread finds cut
points, a small pool hashes and compresses chunks (blake3 and zstd release the GIL, so both cores
work), and the calling thread appends new chunks to the open pack in file order. Chunks the catalog
already knows (`known`) or that appeared earlier in the same file are not stored again.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vfs.config import StoreConfig
from vfs.errors import KeyRequired, VfsError
from vfs.fsutil import fsync_path
from vfs.store import codec
from vfs.store.chunking import Chunker
from vfs.store.keys import VolumeKeys
from vfs.store.packs import (
    PACK_HEADER_SEALED,
    ChunkLocation,
    PackReader,
    PackWriter,
    list_packs,
    pack_path,
    scan_pack,
    write_header,
)
from vfs.store.verify import EntryProblem, PackFile, verify_pack_bytes
from vfs.types import ChunkId, PackNo

# Chunks in flight between the cutter and the writer: bounds memory to ~window x max chunk size.
_WINDOW = 16
# Bytes of a staging file read at once (at least a few maximal chunks: see _ingest_read).
_READ_WINDOW = 8 * 1024 * 1024
# Chunk reads announced to the kernel ahead of the caller (page cache only, no process memory).
_READ_AHEAD = 64


@dataclass
class Ingested:
    """What ingesting one staging file produced."""

    size: int
    content_hash: bytes  # BLAKE3 of the whole content
    chunks: list[tuple[ChunkId, int]]  # the file's chunk ids and plain lengths, in order
    new: list[ChunkLocation] = field(default_factory=list)  # chunks this ingest wrote to a pack

    @property
    def stored_bytes(self) -> int:
        return sum(loc.stored_len for loc in self.new)


@dataclass
class Rewritten:
    """What `ChunkStore.rewrite` copied out of a pack."""

    moves: list[tuple[ChunkLocation, ChunkLocation]] = field(default_factory=list)  # (old, new) per copy
    damaged: list[str] = field(default_factory=list)  # why each entry left behind failed verification

    @property
    def copied_bytes(self) -> int:
        return sum(old.entry_size for old, _ in self.moves)


@dataclass
class _Work:
    chunk_id: ChunkId
    plain_len: int
    encoded: tuple[int, bytes | memoryview] | None  # None: another worker or the catalog has it


class ChunkStore:
    def __init__(
        self, root: Path, config: StoreConfig, threads: int | None = None, *, sealed_upto: int = 0,
        fetch_pack: Callable[[PackNo], Path] | None = None, keys: VolumeKeys | None = None, encrypted: bool = False,
    ) -> None:
        """`sealed_upto` and `fetch_pack`: see PackWriter and PackReader.

        `keys`: an encrypted volume's (its entries are sealed, its cut points seeded); `encrypted` without
        `keys` is such a volume opened without its passphrase: reading a sealed entry or writing any is
        KeyRequired, so nothing plain is ever added to it.
        """
        self.config = config
        self.sealed_upto = sealed_upto
        self.keys = keys
        self._locked = encrypted and keys is None
        self._chunker = Chunker(config, seed=keys.chunker_seed if keys is not None else 0)
        self._root = root
        self._pack_writer: PackWriter | None = None  # made on the first write: see _writer
        self._writer_lock = threading.Lock()
        self._reader = PackReader(root, fetch_pack, keys=keys)
        self._pool = ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 2, thread_name_prefix="chunk")
        # Whole-file hashes, beside the chunk work: one thread, so a file's windows are hashed in order.
        self._file_hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="file-hash")
        self._claim_lock = threading.Lock()
        # Bumped before a pack file is deleted: locations read before may point into it (see reader.py).
        self.generation = 0

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._file_hasher.shutdown(wait=True)
        if self._pack_writer is not None:
            self._pack_writer.close()
        self._reader.close()

    # -- writing -------------------------------------------------------------------------------
    def ingest(self, path: Path | str, known: Callable[[ChunkId], bool], *, sync: bool = True) -> Ingested:
        """Chunk, hash, dedup and pack the file at `path`; its new chunks are durable on return.

        With `sync=False` they are durable only after a later `sync()` (to batch many small files).

        `known(chunk_id)` says whether the catalog already has a chunk (may be called from pool
        threads). The caller commits the result to the catalog only after this returns.
        """
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return Ingested(0, codec.file_hasher().digest(), [])
            if size <= self.config.chunk_min:
                result = self._ingest_small(f.read(), known)
            else:
                fd = f.fileno()
                result = self._ingest_read(lambda offset, n: os.pread(fd, n, offset), size, known)
        if sync:
            self._writer.sync()
        return result

    def _ingest_small(self, data: bytes, known: Callable[[ChunkId], bool]) -> Ingested:
        """A file of one chunk: its chunk id is its content hash, and it is done inline (no thread hop)."""
        cid = codec.chunk_id(data)
        result = Ingested(len(data), cid, [(cid, len(data))])
        if not known(cid):
            kind, stored = codec.encode(data, self.config.zstd_level)
            result.new.append(self._writer.append(cid, kind, stored, len(data)))
        return result

    def ingest_bytes(self, data: bytes, known: Callable[[ChunkId], bool]) -> Ingested:
        """As `ingest`, for content already in memory."""
        view = memoryview(data)
        result = (self._ingest_read(lambda offset, n: view[offset : offset + n], len(data), known) if data
                  else Ingested(0, codec.file_hasher().digest(), []))
        self._writer.sync()
        return result

    def _ingest_read(
        self, read: Callable[[int, int], bytes | memoryview], size: int, known: Callable[[ChunkId], bool],
    ) -> Ingested:
        """Ingest `size` bytes, got a window at a time by `read(offset, length)`; on return, whether it
        succeeded or raised, no task of it is left queued or running.

        A window's chunks are final but for its last one, which the window's end may have cut short:
        the next window starts there. The others are the chunks of the whole content, since FastCDC
        finds a cut from the chunk's own start within chunk_max bytes, and a window holds more.

        Reading, not mapping, the file: a map cannot be closed while a view of it lives (a slice kept
        by a pool thread or an exception's traceback raised BufferError), and reading a map where
        its file has no data any more (truncated meanwhile, or a hole of a file on a full tmpfs)
        kills the process with SIGBUS.
        """
        claimed: set[ChunkId] = set()  # ids this ingest stores; later duplicates are skipped
        level = self.config.zstd_level

        def work(piece: memoryview) -> _Work:
            cid = codec.chunk_id(piece)
            with self._claim_lock:
                fresh = cid not in claimed
                claimed.add(cid)
            if not fresh or known(cid):
                return _Work(cid, len(piece), None)
            return _Work(cid, len(piece), codec.encode(piece, level))

        result = Ingested(0, b"", [])
        pending: deque[Future[_Work]] = deque()

        def drain_one() -> None:
            w = pending.popleft().result()
            result.chunks.append((w.chunk_id, w.plain_len))
            result.size += w.plain_len
            if w.encoded is not None:
                result.new.append(self._writer.append(w.chunk_id, w.encoded[0], w.encoded[1], w.plain_len))

        file_hash = codec.file_hasher()
        hashed_all: Future[object] | None = None  # the last window's update: one thread, so all of them
        window_len = max(_READ_WINDOW, 4 * self.config.chunk_max)
        start = hashed = 0  # offsets in the content: of the window, of the first byte not hashed yet
        try:
            while True:
                window = memoryview(read(start, window_len))
                last = len(window) < window_len or start + len(window) >= size  # (a short read: it shrank)
                hashed_all = self._file_hasher.submit(file_hash.update, window[hashed - start :])
                hashed = start + len(window)
                cuts = list(self._chunker.cut(window))
                if not last:
                    cuts.pop()
                for off, length in cuts:
                    pending.append(self._pool.submit(work, window[off : off + length]))
                    if len(pending) >= _WINDOW:
                        drain_one()
                if last:
                    break
                start += cuts[-1][0] + cuts[-1][1]
            while pending:
                drain_one()
        finally:
            for future in pending:
                future.cancel()
            futures.wait(pending)  # (cancelled ones count as done)
            if hashed_all is not None:
                futures.wait([hashed_all])
        result.content_hash = file_hash.digest()
        return result

    def sync(self) -> None:
        if self._pack_writer is not None:
            self._pack_writer.sync()

    def seal(self) -> PackNo:
        """Seal the open pack if it holds anything (see PackWriter.seal); the highest sealed pack."""
        return self._writer.seal()

    @property
    def open_pack(self) -> PackNo:
        """The pack appends go to (without opening a writer: a read-only user must not create one)."""
        if self._pack_writer is not None:
            return self._pack_writer.open_pack
        existing = list_packs(self._root)
        last = existing[-1] if existing else 0
        return PackNo(last if last > self.sealed_upto else self.sealed_upto + 1)

    def sealed_packs(self) -> list[tuple[PackNo, int]]:
        """(number, size in bytes) of every sealed pack present locally, ascending."""
        open_pack = self.open_pack
        out = []
        for n in list_packs(self._root):
            if n < open_pack:
                try:
                    out.append((PackNo(n), os.path.getsize(pack_path(self._root, n))))
                except FileNotFoundError:
                    pass  # evicted meanwhile
        return out

    def pack_file(self, pack: int) -> Path:
        return pack_path(self._root, pack)

    def pack_last_use(self) -> dict[int, float]:
        """pack -> time.monotonic() of its last read in this process."""
        return dict(self._reader.last_use)

    def evict_pack(self, pack: int) -> int:
        """Remove a sealed pack's local file (it must be safe elsewhere); the bytes freed."""
        if pack >= self.open_pack:
            raise ValueError(f"pack {pack} is not sealed")
        self._reader.forget(pack)
        path = pack_path(self._root, pack)
        try:
            size = os.path.getsize(path)
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    @property
    def _writer(self) -> PackWriter:
        """The pack writer, opened on first use: a store opened only to read (perhaps without the
        store lock, next to a running daemon) must never create, rewrite or truncate a pack."""
        with self._writer_lock:
            if self._locked:
                raise KeyRequired("the volume is encrypted and the store was opened without its passphrase: "
                                  "nothing can be written to it")
            if self._pack_writer is None:
                self._pack_writer = PackWriter(self._root, self.config.pack_target, sealed_upto=self.sealed_upto,
                                               keys=self.keys)
            return self._pack_writer

    def copy_entry(self, loc: ChunkLocation) -> ChunkLocation:
        """Append a verified copy of an existing entry to the open pack (repacking); where it is now.

        Raises:
            CorruptChunk, MissingChunk: the entry is damaged or gone; damage is never copied.
        """
        stored = self._reader.read_entry(loc)
        codec.decode(loc.stored_codec, stored, loc.plain_len, loc.chunk_id, f"pack {loc.pack}")
        return self._writer.append(loc.chunk_id, loc.stored_codec, stored, loc.plain_len)

    def forget_pack(self, pack: int) -> None:
        """Drop the cached descriptor of a pack whose file is about to be removed or replaced."""
        self._reader.forget(pack)

    # -- the pack format, for maintenance (gc, fsck, repair) ---------------------------------------
    def local_packs(self) -> list[PackNo]:
        """Numbers of every pack file present locally (the open one included), ascending."""
        return [PackNo(n) for n in list_packs(self._root)]

    def pack_size(self, pack: int) -> int | None:
        """Bytes of a local pack file; None if it is not local."""
        try:
            return os.path.getsize(pack_path(self._root, pack))
        except FileNotFoundError:
            return None

    def unsealed_bytes(self) -> int:
        """Bytes of the open pack file if it holds any entry (what uploading it would send), else 0."""
        size = self.pack_size(self.open_pack) or 0
        return size if size > PackWriter.EMPTY_SIZE else 0

    def is_sealed(self, pack: int) -> bool:
        """Whether a local pack is of the sealed format (an encrypted volume's)."""
        with open(pack_path(self._root, pack), "rb") as f:
            return f.read(len(PACK_HEADER_SEALED)) == PACK_HEADER_SEALED

    def open_pack_file(self, pack: int) -> PackFile:
        """A local pack file opened to check its header and entries (FileNotFoundError if absent)."""
        return PackFile(pack_path(self._root, pack), self.keys)

    def verify_chunk(self, loc: ChunkLocation) -> EntryProblem | None:
        """The problem of the entry `loc` points to in its local pack (whole, header, BLAKE3), or None."""
        path = pack_path(self._root, loc.pack)
        try:
            pack = PackFile(path, self.keys)
        except FileNotFoundError:
            return EntryProblem("missing-pack", f"chunk {loc.chunk_id.hex()}: pack {loc.pack} is missing ({path})")
        with pack:
            return pack.verify(loc)

    def verify_pack_bytes(self, data: bytes, locations: Iterable[ChunkLocation]) -> bool:
        """Whether every entry of `locations` is intact in `data`, a whole pack's bytes."""
        return verify_pack_bytes(data, locations, self.keys)

    def scan(self, pack: int) -> list[ChunkLocation]:
        """The entries found in a local pack file, in order, without the catalog (for repair).

        Raises:
            CorruptChunk: the file has no pack header. OSError: it cannot be read.
        """
        return scan_pack(pack_path(self._root, pack), self.keys)

    def rewrite(self, pack: int, keep: Iterable[ChunkLocation]) -> Rewritten:
        """Copy the entries `keep` of a sealed pack to the open pack, verified (damage is never copied),
        in their order in the pack; the copies are durable only after `sync()`."""
        done = Rewritten()
        for loc in sorted(keep, key=lambda e: e.offset):
            assert loc.pack == pack, (loc, pack)
            try:
                done.moves.append((loc, self.copy_entry(loc)))
            except VfsError as e:
                done.damaged.append(str(e))
        return done

    def delete(self, pack: int) -> None:
        """Remove a local pack file durably (nothing may point into it any more)."""
        self.generation += 1  # before the file goes: a read that then fails sees the change (reader.py)
        self._reader.forget(pack)  # a cached descriptor would keep the file's blocks allocated
        path = pack_path(self._root, pack)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_path(path.parent, directory=True)

    def repair_header(self, pack: int) -> None:
        """Put back the header of a local pack whose header is damaged (see `PackFile.has_header`)."""
        write_header(pack_path(self._root, pack), self.keys)

    # -- reading -------------------------------------------------------------------------------
    def read_chunk(self, loc: ChunkLocation, *, fetch: bool = True) -> bytes:
        """The plain bytes of a chunk, verified against its id (CorruptChunk otherwise); without
        `fetch`, MissingChunk if its pack is not local."""
        stored = self._reader.read_entry(loc, fetch=fetch)
        return codec.decode(loc.stored_codec, stored, loc.plain_len, loc.chunk_id, f"pack {loc.pack}")

    def read_chunk_soon(self, loc: ChunkLocation) -> Future[bytes]:
        """`read_chunk` in the store's thread pool (read-ahead). The kernel is told at once, so that the
        disk reads of all chunks asked for run in parallel while the pool decodes them in turn."""
        self._reader.prefetch(loc)
        return self._pool.submit(self.read_chunk, loc)

    def read_chunks(self, locs: Iterable[ChunkLocation]) -> Iterator[bytes]:
        """`read_chunk` over many locations, decoded in parallel, yielded in order.

        `locs` is consumed lazily, up to `_READ_AHEAD` locations ahead of the caller; each one taken is
        announced to the kernel at once, so disk reads run ahead of decoding instead of waiting for it.
        """
        it = iter(locs)
        ahead: deque[ChunkLocation] = deque()
        pending: deque[Future[bytes]] = deque()
        while True:
            for loc in itertools.islice(it, _READ_AHEAD - len(ahead)):
                self._reader.prefetch(loc)
                ahead.append(loc)
            if not ahead:
                break
            pending.append(self._pool.submit(self.read_chunk, ahead.popleft()))
            if len(pending) >= _WINDOW:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

