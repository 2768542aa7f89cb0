"""Partial packs: sparse local copies of remote packs, filled entry by entry with ranged reads.

A pack the store lacks locally but its remote holds (a lazy clone's, an evicted one, a follower's) is
read through its *partial pack* `packs/NNNN/NNNNNNNN.partial`: a sparse file with the remote pack
object's bytes at their own offsets, holding only the entries read so far (the rest are holes, which
read as zeros). The remote pack object is byte for byte the pack file, and entries are
self-describing, so one entry can be fetched and checked alone:

- a read checks the entry in the partial file as any read checks an entry (its header equals the
  location, its stored bytes unseal and decode to plain bytes whose BLAKE3 is the chunk id);
- an entry that fails that check (a hole, or a write torn by a kill) is fetched with one ranged read
  of its bytes, checked the same way *before* it is written at its offset, then served. Bytes from the
  remote that fail the check are never written nor served: CorruptChunk naming the remote object.
- Neighbouring entries one request wants are fetched with one ranged read (gaps up to `_MAX_GAP`, runs
  up to `_MAX_RUN` bytes), and runs are fetched in parallel by a pool of `threads` (a sequential
  reader's read-ahead asks for several chunks at once). Two readers of one entry share one fetch.

A partial pack is a cache, not a pack: never fsync'd (a write lost to a crash is a hole, fetched again),
dropped once the whole pack file arrives, and evicted least recently used first while the bytes it
takes on disk (allocated blocks, not its apparent size) and the whole packs exceed the store's cache
size. A partial file in use (being read or written) is never evicted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vfs.errors import CorruptChunk, MissingChunk
from vfs.fsutil import PRIVATE_FILE, private_dir
from vfs.store import codec
from vfs.store.keys import VolumeKeys
from vfs.store.packs import PARTIAL_SUFFIX, ChunkLocation, header_matches, keys_for, partial_path, stored_bytes
from vfs.types import PackNo

log = logging.getLogger(__name__)

# (pack, offset, length) -> (the remote pack object's bytes [offset, offset+length), what to call them in
# a message: the object's key and the remote). Raises MissingChunk when the remote lacks the pack.
RemoteRange = Callable[[PackNo, int, int], tuple[bytes, str]]

_MAX_GAP = 64 * 1024  # bytes between two wanted entries fetched and dropped rather than a second request
_MAX_RUN = 4 * 1024 * 1024  # bytes of one ranged read at most (a run longer than that is split)
# Partial files kept open while idle, the most recently used: a follower reads a new pack at each
# refresh, and keeping each open cost a descriptor per pack for the life of the process.
_OPEN_IDLE_MAX = 64


@dataclass
class _File:
    fd: int  # -1 while not open
    allocated: int  # bytes of disk blocks it takes
    last_use: float  # time.monotonic() of its last read; 0 if not read by this process
    mtime: float  # when it was last written (orders the ones not read by this process)
    busy: int = 0  # readers and writers using `fd` now: it is neither closed nor evicted meanwhile


class PartialPacks:
    """The partial packs under `root` (a store's `packs/`), filled from `fetch_range`. Thread-safe.

    Args:
        fetch_range: reads a range of a remote pack object (see `RemoteRange`).
        keys: an encrypted volume's (its entries are sealed).
        budget: bytes the partial packs may take on disk now (None: no bound); asked after each fetch.
        threads: ranged reads in flight at most.
    """

    def __init__(self, root: Path, fetch_range: RemoteRange, *, keys: VolumeKeys | None = None,
                 budget: Callable[[], int | None] = lambda: None, threads: int = 8) -> None:
        self._root = root
        self._fetch_range = fetch_range
        self._keys = keys
        self._budget = budget
        self._lock = threading.Lock()
        self._files: dict[PackNo, _File] = {}
        self._idle: OrderedDict[PackNo, None] = OrderedDict()  # open and not busy, least recently used first
        self._inflight: dict[tuple[PackNo, int], Future[bytes]] = {}  # entries being fetched, by (pack, offset)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chunk-fetch")
        for path in root.glob(f"*/*{PARTIAL_SUFFIX}") if root.exists() else ():
            try:
                st = path.stat()
                self._files[PackNo(int(path.stem))] = _File(-1, st.st_blocks * 512, 0.0, st.st_mtime)
            except (OSError, ValueError):
                continue  # gone meanwhile, or not a name of ours

    # -- reading -------------------------------------------------------------------------------
    def read(self, loc: ChunkLocation, *, fetch: bool = True) -> bytes:
        """The plain bytes of `loc`, verified: from the partial file, else (with `fetch`) from the remote.

        Raises:
            MissingChunk: not in the partial file and `fetch` is off, or the remote lacks the pack.
            CorruptChunk: the remote's bytes fail the check (named by the remote object).
            KeyRequired: the entry is sealed and the store was opened without keys.
        """
        if loc.sealed:
            keys_for(self._keys, loc)  # before any fetch: without keys the bytes are of no use
        if not fetch:
            f = self._acquire(loc.pack, create=False)
            plain = None if f is None else self._local(f, loc)
            if f is not None:
                self._release(loc.pack, f)
            if plain is None:
                raise MissingChunk(f"chunk {loc.chunk_id.hex()}: pack {loc.pack} is on the remote only")
            return plain
        futures, mine = self._claim([loc])
        if mine:
            self._fill(loc.pack, mine)  # in this thread: it would only wait for the pool otherwise
        return futures[0].result()

    def read_soon(self, locs: Sequence[ChunkLocation]) -> list[Future[bytes]]:
        """`read` of each of `locs` (in order) in the pool; neighbouring entries are fetched together.

        Returns at once (callers may hold a lock: nothing here waits on another thread).
        """
        futures, mine = self._claim(locs)
        for run in _runs(mine, gap=_MAX_GAP, limit=_MAX_RUN):  # a job per run: runs are fetched in parallel
            self._pool.submit(self._fill, run[0].pack, run)
        return futures

    def _claim(self, locs: Sequence[ChunkLocation]) -> tuple[list[Future[bytes]], list[ChunkLocation]]:
        """A future per location, and the locations this caller must fill: an entry another thread is
        fetching already is waited for, not fetched twice."""
        futures: list[Future[bytes]] = []
        mine: list[ChunkLocation] = []
        with self._lock:
            for loc in locs:
                key = (loc.pack, loc.offset)
                future = self._inflight.get(key)
                if future is None:
                    future = self._inflight[key] = Future()
                    future.set_running_or_notify_cancel()
                    mine.append(loc)
                futures.append(future)
        return futures, mine

    def _settle(self, loc: ChunkLocation, plain: bytes | None, error: BaseException | None = None) -> None:
        """Give a claimed entry's waiters its bytes (or `error`)."""
        with self._lock:
            future = self._inflight.pop((loc.pack, loc.offset), None)
        if future is None or future.done():
            return
        # Outside the lock: callbacks run here, and may take their owner's locks (the content reader's).
        if error is not None:
            future.set_exception(error)
        else:
            assert plain is not None
            future.set_result(plain)

    def _fill(self, pack: PackNo, locs: list[ChunkLocation]) -> None:
        """Serve claimed entries of one pack: from the partial file, the rest fetched, checked and kept.

        Fetched entries are settled only after the cache is trimmed, so that a reader that got them
        finds the cache within its size.
        """
        f = self._acquire(pack, create=False)
        fetched: list[tuple[ChunkLocation, bytes | None, BaseException | None]] = []
        wrote = False
        try:
            missing = []
            for loc in sorted(locs, key=lambda x: x.offset):
                plain = None if f is None else self._local(f, loc)
                if plain is None:
                    missing.append(loc)
                else:
                    self._settle(loc, plain)
            for run in _runs(missing, gap=_MAX_GAP, limit=_MAX_RUN):
                start = run[0].offset
                try:
                    data, where = self._fetch_range(pack, start, run[-1].offset + run[-1].entry_size - start)
                except Exception as e:  # the remote's failure is each waiter's (MissingChunk, BackendError)
                    fetched.extend((loc, None, e) for loc in run)
                    continue
                for loc in run:
                    piece = data[loc.offset - start : loc.offset - start + loc.entry_size]
                    try:
                        plain = self._check(loc, piece, f"pack {pack} from {where}")
                    except CorruptChunk as e:  # never kept, never served
                        fetched.append((loc, None, e))
                        continue
                    if f is None:
                        f = self._acquire(pack, create=True)
                    wrote = self._keep(f, piece, loc.offset) or wrote
                    fetched.append((loc, plain, None))
        except BaseException as e:
            for loc in locs:
                self._settle(loc, None, e)  # (a settled one is left as it is)
            raise
        finally:
            if f is not None:
                self._release(pack, f, wrote)
        if wrote:
            self.trim()
        for loc, plain, error in fetched:
            self._settle(loc, plain, error)

    def _keep(self, f: _File | None, piece: bytes, offset: int) -> bool:
        """Write checked bytes at their offset; False if they could not be (a cache: the read goes on)."""
        if f is None:
            return False
        try:
            os.pwrite(f.fd, piece, offset)
        except OSError as e:
            log.info("could not keep fetched bytes in a partial pack (%s): they are served, not kept", e)
            return False
        return True

    def _local(self, f: _File, loc: ChunkLocation) -> bytes | None:
        """The entry from the partial file if it is there whole and intact, else None."""
        try:
            data = os.pread(f.fd, loc.entry_size, loc.offset)
        except OSError:
            return None
        if len(data) < loc.entry_size:
            return None
        try:
            return self._check(loc, data, f"pack {loc.pack} (partial)")
        except CorruptChunk:
            return None  # a hole or a torn write: fetched again

    def _check(self, loc: ChunkLocation, entry: bytes, where: str) -> bytes:
        """The plain bytes of an entry's bytes (header and body), checked as every read is."""
        if len(entry) < loc.entry_size:
            raise CorruptChunk(f"chunk {loc.chunk_id.hex()} in {where}: the object ends before the entry does")
        if not header_matches(entry[: loc.header_size], loc, self._keys):
            raise CorruptChunk(f"chunk {loc.chunk_id.hex()} in {where}: entry header does not match")
        stored = stored_bytes(loc, entry[loc.header_size :], self._keys, where)
        return codec.decode(loc.stored_codec, stored, loc.plain_len, loc.chunk_id, where)

    # -- the files -----------------------------------------------------------------------------
    def _acquire(self, pack: PackNo, *, create: bool) -> _File | None:
        """The partial file of `pack`, open and marked busy (None if absent and not `create`)."""
        with self._lock:
            f = self._files.get(pack)
            if f is None or f.fd < 0:
                path = partial_path(self._root, pack)
                try:
                    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
                except FileNotFoundError:
                    if not create:
                        self._files.pop(pack, None)  # (removed behind our back: the whole pack arrived)
                        return None
                    private_dir(path.parent, parents=True)
                    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
                if f is None:
                    f = self._files[pack] = _File(fd, 0, 0.0, 0.0)
                f.fd = fd
            self._idle.pop(pack, None)
            f.busy += 1
            f.last_use = time.monotonic()
            return f

    def _release(self, pack: PackNo, f: _File, wrote: bool = False) -> None:
        """Done with `f`, the file of `pack`; after writes, count the blocks it takes now (under the
        lock: the last count taken is the newest). Idle files beyond _OPEN_IDLE_MAX are closed, the
        least recently used first (`_acquire` opens one again)."""
        with self._lock:
            if wrote:
                try:
                    st = os.fstat(f.fd)
                    f.allocated, f.mtime = st.st_blocks * 512, st.st_mtime
                except OSError:
                    pass
            f.busy -= 1
            if f.busy or f.fd < 0:
                return
            self._idle[pack] = None
            self._idle.move_to_end(pack)
            while len(self._idle) > _OPEN_IDLE_MAX:
                oldest = self._files[self._idle.popitem(last=False)[0]]
                os.close(oldest.fd)
                oldest.fd = -1

    def usage(self) -> dict[PackNo, tuple[int, float]]:
        """pack -> (bytes its partial file takes on disk, time.monotonic() of its last read or 0)."""
        with self._lock:
            return {p: (f.allocated, f.last_use) for p, f in self._files.items()}

    def drop(self, pack: PackNo) -> int:
        """Delete the partial file of `pack` unless it is in use; the bytes freed."""
        with self._lock:
            f = self._files.get(pack)
            if f is None or f.busy:
                return 0
            del self._files[pack]
            self._idle.pop(pack, None)
            if f.fd >= 0:
                os.close(f.fd)
            partial_path(self._root, pack).unlink(missing_ok=True)
            return f.allocated

    def trim(self) -> None:
        """Evict least recently used partial files (not in use) while they take more than the budget."""
        budget = self._budget()
        if budget is None:
            return
        with self._lock:
            total = sum(f.allocated for f in self._files.values())
            if total <= budget:
                return
            order = sorted((f.last_use, f.mtime, p) for p, f in self._files.items() if not f.busy)
        for _, _, pack in order:
            if total <= budget:
                break
            freed = self.drop(pack)
            log.debug("evicted partial pack %d (%d bytes) for the cache size", pack, freed)
            total -= freed

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            waiting, self._inflight = list(self._inflight.values()), {}
        for future in waiting:  # claimed by a job that was cancelled: nobody else would settle them
            if not future.done():
                future.set_exception(MissingChunk("the store was closed before the chunk was fetched"))
        with self._lock:
            self._idle.clear()
            for f in self._files.values():
                if f.fd >= 0:
                    os.close(f.fd)
                    f.fd = -1


def _runs(locs: Sequence[ChunkLocation], *, gap: int, limit: int) -> list[list[ChunkLocation]]:
    """`locs` grouped into runs of one pack, by offset: an entry joins the run before it when it starts at
    most `gap` bytes after that run's end and the run stays within `limit` bytes."""
    runs: list[list[ChunkLocation]] = []
    for loc in sorted(locs, key=lambda x: (x.pack, x.offset)):
        if runs:
            run = runs[-1]
            end = run[-1].offset + run[-1].entry_size
            if (run[0].pack == loc.pack and 0 <= loc.offset - end <= gap
                    and loc.offset + loc.entry_size - run[0].offset <= limit):
                run.append(loc)
                continue
        runs.append([loc])
    return runs
