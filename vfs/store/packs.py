"""Pack files: append-only local files of chunk entries.

Layout of `packs/NN/NNNNNNNN.pack` (NN = pack number // 1000, so no folder grows huge):

    header  16 bytes: b"VFSPACK\\0", format version, key id, 6 reserved zero bytes
    format 1 (key id 0, plain):
    entry*  41-byte header (chunk id 32, codec u8, stored length u32, plain length u32) + stored bytes
    format 2 (key id 1, an encrypted volume's):
    entry*  36-byte header (keyed chunk id 32, sealed length u32) + sealed (codec u8, plain length u32,
            stored bytes), each entry sealed on its own so that any one can be read alone

A location's codec carries `SEALED` for an entry of a format 2 pack, so a reader knows the entry's
layout from the catalog alone. The same pack bytes are the remote's pack object (docs/design.md).

Entries are self-describing, so a pack can be scanned without the catalog. The highest-numbered pack is
the *open* one and receives appends; every other pack is *sealed* and never changes again. Bytes after
the last entry the catalog knows of (a crash between write and commit) are garbage, never read.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vfs.errors import CorruptChunk, KeyRequired, MissingChunk, NoSpace
from vfs.fsutil import private_dir, replace_file
from vfs.store.keys import VolumeKeys
from vfs.types import ChunkId, PackNo

PACK_MAGIC = b"VFSPACK\0"
PACK_FORMAT = 1
PACK_FORMAT_SEALED = 2
PACK_HEADER = PACK_MAGIC + bytes([PACK_FORMAT, 0]) + bytes(6)
PACK_HEADER_SEALED = PACK_MAGIC + bytes([PACK_FORMAT_SEALED, 1]) + bytes(6)
ENTRY = struct.Struct("<32sBII")
ENTRY_SEALED = struct.Struct("<32sI")
SEALED_PREFIX = struct.Struct("<BI")  # codec, plain length: the sealed part's first bytes
SEALED = 0x80  # in a location's codec: the entry is sealed (format 2); the low bits are the real codec


def pack_header(keys: VolumeKeys | None) -> bytes:
    return PACK_HEADER if keys is None else PACK_HEADER_SEALED


@dataclass(frozen=True, slots=True)
class ChunkLocation:
    chunk_id: ChunkId
    pack: PackNo
    offset: int  # of the entry header in the pack file
    codec: int
    stored_len: int
    plain_len: int

    @property
    def sealed(self) -> bool:
        return bool(self.codec & SEALED)

    @property
    def stored_codec(self) -> int:
        """How the stored bytes are encoded (vfs.store.codec), without the SEALED flag."""
        return self.codec & ~SEALED

    @property
    def header_size(self) -> int:
        return ENTRY_SEALED.size if self.sealed else ENTRY.size

    @property
    def entry_size(self) -> int:
        """Bytes the entry takes in its pack: header and stored (or sealed) bytes."""
        return self.header_size + self.stored_len


def keys_for(keys: VolumeKeys | None, loc: ChunkLocation) -> VolumeKeys:
    """The keys a sealed entry needs (KeyRequired without them): partial packs check it before a fetch."""
    if keys is None:
        raise KeyRequired(f"chunk {loc.chunk_id.hex()} is encrypted and the store was opened without its passphrase")
    return keys


def header_matches(header: bytes, loc: ChunkLocation, keys: VolumeKeys | None = None) -> bool:
    """Whether an entry header (as read at `loc.offset`) describes the chunk `loc` names."""
    if len(header) < loc.header_size:
        return False
    if loc.sealed:
        return bool(header[: ENTRY_SEALED.size] == ENTRY_SEALED.pack(keys_for(keys, loc).keyed_chunk_id(loc.chunk_id),
                                                                      loc.stored_len))
    return bool(ENTRY.unpack(header) == (loc.chunk_id, loc.codec, loc.stored_len, loc.plain_len))


def stored_bytes(loc: ChunkLocation, body: bytes, keys: VolumeKeys | None, where: str) -> bytes:
    """The stored (encoded) bytes of the entry whose bytes after its header are `body`: unsealed and
    checked against `loc` for a sealed entry, `body` itself otherwise.

    Raises:
        CorruptChunk: a sealed entry fails authentication or says another codec or length than `loc`.
        KeyRequired: the entry is sealed and there are no keys.
    """
    if not loc.sealed:
        return body
    vk = keys_for(keys, loc)
    name = vk.keyed_chunk_id(loc.chunk_id).hex()
    try:
        payload = vk.unseal("pack", name, PACK_FORMAT_SEALED, body)
    except CorruptChunk:
        raise CorruptChunk(f"chunk {loc.chunk_id.hex()} in {where}: fails authentication (altered, or sealed "
                           "under another key)") from None
    if len(payload) < SEALED_PREFIX.size or SEALED_PREFIX.unpack_from(payload) != (loc.stored_codec, loc.plain_len):
        raise CorruptChunk(f"chunk {loc.chunk_id.hex()} in {where}: sealed entry does not match the catalog")
    return payload[SEALED_PREFIX.size :]


def seal_entry(keys: VolumeKeys, chunk_id: ChunkId, codec: int, stored: bytes | memoryview,
               plain_len: int) -> tuple[bytes, bytes]:
    """(header, sealed bytes) of a format 2 entry."""
    keyed = keys.keyed_chunk_id(chunk_id)
    body = keys.seal("pack", keyed.hex(), PACK_FORMAT_SEALED, SEALED_PREFIX.pack(codec, plain_len) + bytes(stored))
    return ENTRY_SEALED.pack(keyed, len(body)), body


def pack_path(root: Path, pack: int) -> Path:
    return root / f"{pack // 1000:04d}" / f"{pack:08d}.pack"


PARTIAL_SUFFIX = ".partial"


def partial_path(root: Path, pack: int) -> Path:
    """The partial copy of a pack the store lacks (`vfs.store.partial`): never a `.pack`, so that nothing
    that takes a pack file for a whole pack (fsck, uploads, eviction, `vfs fetch`) meets it."""
    return pack_path(root, pack).with_suffix(PARTIAL_SUFFIX)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise NoSpace("no space left on the store's disk") from None
            raise
        view = view[n:]


class PackWriter:
    """Appends entries to the open pack; rotates to a new pack past the target size. Thread-safe."""

    EMPTY_SIZE = len(PACK_HEADER)  # bytes of a pack file without any entry (either format)

    def __init__(self, root: Path, target: int, *, sealed_upto: int = 0, keys: VolumeKeys | None = None) -> None:
        """Open the pack writer of `root`.

        `sealed_upto`: packs numbered up to it are sealed whatever their size (uploaded to a remote,
        or fetched from one): the writer never appends to them and starts its new pack above them.
        `keys`: an encrypted volume's; its packs are format 2 (each entry sealed).
        """
        self._root = root
        self._target = target
        self._keys = keys
        self._header = pack_header(keys)
        self._lock = threading.Lock()  # guards the open pack, its size and _unsynced
        self._sync_lock = threading.Lock()  # one sync at a time, so a sync never returns early
        self._unsynced: set[int] = set()  # fds written since their last fsync (kept open until synced)
        self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pack-flush")
        private_dir(root, parents=True)
        existing = list_packs(root)
        self._pack = PackNo(max(existing[-1] if existing else 0, sealed_upto))
        self._fd = -1
        self._size = 0
        last = pack_path(root, self._pack)
        if (existing and self._pack > sealed_upto and _cut_torn_tail(last, keys)
                and os.path.getsize(last) < target):
            self._open(self._pack, new=False)
        else:
            self._open(PackNo(self._pack + 1), new=True)

    def _open(self, pack: PackNo, *, new: bool) -> None:
        path = pack_path(self._root, pack)
        private_dir(path.parent, parents=True)
        if new or path.stat().st_size < len(self._header):
            # Header first, then the name: a crash never leaves a .pack without its header.
            replace_file(path, self._header)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._pack = pack
        self._size = os.fstat(self._fd).st_size

    def append(self, chunk_id: ChunkId, codec: int, stored: bytes | memoryview, plain_len: int) -> ChunkLocation:
        """Append one entry (`codec` is the real codec, never with SEALED: the writer's keys decide)."""
        if self._keys is not None:
            header, stored = seal_entry(self._keys, chunk_id, codec, stored, plain_len)  # outside the lock
            codec |= SEALED
        else:
            header = ENTRY.pack(chunk_id, codec, len(stored), plain_len)
        with self._lock:
            offset = self._size
            try:
                _write_all(self._fd, header + bytes(stored) if len(stored) < 65536 else header)
                if len(stored) >= 65536:
                    _write_all(self._fd, stored)
            except BaseException:
                # A partial entry (a full disk) would shift every later append off its recorded
                # offset (O_APPEND writes at the real end): cut it off again.
                os.ftruncate(self._fd, self._size)
                raise
            self._size += len(header) + len(stored)
            loc = ChunkLocation(chunk_id, self._pack, offset, codec, len(stored), plain_len)
            self._unsynced.add(self._fd)
            if self._size >= self._target:
                # Its writeback starts now, in the background, so that sync() has little left to wait for.
                self._flusher.submit(_flush, pack_path(self._root, self._pack))
                self._seal_open_pack()
            return loc

    def _seal_open_pack(self) -> None:
        """Start the next pack (with _lock held). The sealed pack's fd goes to _unsynced even if its
        entries were fsync'd already: the next sync() fsyncs it (then a cheap no-op) and closes it, and a
        sync fsyncing it right now leaves it open for that one."""
        self._unsynced.add(self._fd)
        self._open(PackNo(self._pack + 1), new=True)

    def sync(self) -> None:
        """Make every entry appended before this call durable (before the catalog may point to it).

        Syncs are serialized: a sync that found nothing to do could otherwise return while another
        thread is still fsyncing the entries this caller appended.
        """
        with self._sync_lock:
            with self._lock:
                fds, self._unsynced = self._unsynced, set()
            for fd in fds:
                os.fsync(fd)
            with self._lock:
                # A sealed pack's fd is closed once synced, unless it went back to _unsynced after the
                # swap above (an append before its seal, or the seal itself), for the next sync to close.
                for fd in fds:
                    if fd != self._fd and fd not in self._unsynced:
                        os.close(fd)

    def seal(self) -> PackNo:
        """Seal the open pack now if it holds any entry, and make every sealed pack durable.

        Returns the highest sealed pack number (0 if none): every entry appended before this call is
        then in a pack numbered at most that, which never changes again. The next pack's file is
        created (and its directory fsync'd) before this returns, so a restarted writer never reopens
        the sealed one.
        """
        with self._lock:
            if self._size > len(self._header):
                self._seal_open_pack()
            sealed = PackNo(self._pack - 1)
        self.sync()
        return sealed

    def close(self) -> None:
        self.sync()
        self._flusher.shutdown(wait=True, cancel_futures=True)  # after sync(), early flushes are moot
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    @property
    def open_pack(self) -> PackNo:
        return self._pack


# Pack files a reader keeps open while idle, the most recently read: reading a whole volume would
# otherwise hold one descriptor per pack it has.
_OPEN_IDLE_MAX = 256


@dataclass
class _OpenPack:
    fd: int
    busy: int = 0  # reads using `fd` now: it is closed only after them
    forgotten: bool = False  # `forget` came while it was busy: the last read closes it


class PackReader:
    """Reads entries back by location, with a cache of read-only descriptors. Thread-safe.

    Only whole local pack files: a pack missing locally is MissingChunk here (the chunk store then reads
    it through its partial pack, `vfs.store.partial`). `opened(pack)` is called when a pack file is
    opened (a whole pack that arrived makes its partial copy moot).
    """

    def __init__(self, root: Path, *, keys: VolumeKeys | None = None,
                 opened: Callable[[PackNo], object] | None = None) -> None:
        self._root = root
        self._keys = keys
        self._lock = threading.Lock()
        self._open: OrderedDict[int, _OpenPack] = OrderedDict()  # least recently released first
        self._opened = opened
        self.last_use: dict[int, float] = {}  # pack -> time.monotonic() of its last read (for LRU eviction)

    def is_local(self, pack: PackNo) -> bool:
        """Whether the whole pack file is here (it may be evicted right after: a read still falls back)."""
        with self._lock:
            if pack in self._open:
                return True
        return pack_path(self._root, pack).exists()

    def _acquire(self, loc: ChunkLocation) -> _OpenPack:
        """`loc`'s pack file, open: its descriptor is not closed before `_release`."""
        with self._lock:
            self.last_use[loc.pack] = time.monotonic()
            o = self._open.get(loc.pack)
            if o is not None:
                o.busy += 1
                return o
        return self._open_pack(loc)

    def _open_pack(self, loc: ChunkLocation) -> _OpenPack:
        path = pack_path(self._root, loc.pack)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise MissingChunk(f"chunk {loc.chunk_id.hex()}: its pack {loc.pack} is missing ({path})") from None
        with self._lock:
            o = self._open.setdefault(loc.pack, _OpenPack(fd))
            o.busy += 1
        if o.fd != fd:  # another thread opened it meanwhile
            os.close(fd)
        elif self._opened is not None:
            self._opened(loc.pack)
        return o

    def _release(self, pack: int, o: _OpenPack) -> None:
        """Done with `o`; idle descriptors beyond _OPEN_IDLE_MAX are closed, least recently used first."""
        with self._lock:
            o.busy -= 1
            if o.busy:
                return
            if o.forgotten:
                os.close(o.fd)
                return
            if self._open.get(pack) is not o:  # the reader was closed meanwhile (and closed the fd)
                return
            self._open.move_to_end(pack)
            while len(self._open) > _OPEN_IDLE_MAX:
                idle = next((p for p, c in self._open.items() if not c.busy), None)
                if idle is None:
                    return
                os.close(self._open.pop(idle).fd)

    def forget(self, pack: int) -> None:
        """Close the cached descriptor of `pack` (before its file is removed by eviction), once no read
        uses it."""
        with self._lock:
            o = self._open.pop(pack, None)
            self.last_use.pop(pack, None)
            if o is None:
                return
            if o.busy:
                o.forgotten = True
            else:
                os.close(o.fd)

    def read_entry(self, loc: ChunkLocation) -> bytes:
        """The stored bytes of `loc`, after checking the entry header agrees with the location (and, for
        a sealed entry, unsealing it). MissingChunk if the pack file is not here.
        """
        where = f"pack {loc.pack} at offset {loc.offset}"
        if loc.sealed:
            keys_for(self._keys, loc)
        o = self._acquire(loc)
        try:
            # Header and body in two reads: slicing the body out of one buffer would copy it again.
            header = os.pread(o.fd, loc.header_size, loc.offset)
            data = os.pread(o.fd, loc.stored_len, loc.offset + loc.header_size)
        finally:
            self._release(loc.pack, o)
        if len(header) < loc.header_size or len(data) < loc.stored_len:
            raise CorruptChunk(f"chunk {loc.chunk_id.hex()} in {where}: pack is truncated")
        if not header_matches(header, loc, self._keys):
            raise CorruptChunk(f"chunk {loc.chunk_id.hex()} in {where}: entry header does not match")
        return stored_bytes(loc, data, self._keys, where)

    def prefetch(self, loc: ChunkLocation) -> None:
        """Ask the kernel to start reading the entry of `loc` into the page cache; returns at once.

        Only a hint: a missing pack is reported by `read_entry`, not here.
        """
        try:
            o = self._acquire(loc)
        except (MissingChunk, OSError):
            return
        try:
            os.posix_fadvise(o.fd, loc.offset, loc.entry_size, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            self._release(loc.pack, o)

    def close(self) -> None:
        with self._lock:
            for o in self._open.values():
                os.close(o.fd)
            self._open.clear()


def list_packs(root: Path) -> list[int]:
    """Numbers of all pack files under `root`, ascending."""
    if not root.exists():
        return []
    return sorted(int(p.stem) for p in root.glob("*/*.pack"))


def scan_pack(path: Path, keys: VolumeKeys | None = None) -> list[ChunkLocation]:
    """Every complete entry of a pack file, in order (stops at a torn tail).

    A sealed pack's entries name only keyed ids: each is unsealed and decoded to find its chunk id
    (`keys` needed), and one that fails to is left out (it cannot be read anyway).
    """
    from vfs.store import codec  # (codec imports nothing of this module; kept local to say who needs it)

    data = path.read_bytes()
    found, _end = _scan(path, data)
    if not data.startswith(PACK_HEADER_SEALED):
        return found
    out = []
    for raw in found:
        body = data[raw.offset + ENTRY_SEALED.size : raw.offset + raw.entry_size]
        vk = keys_for(keys, raw)
        try:
            payload = vk.unseal("pack", raw.chunk_id.hex(), PACK_FORMAT_SEALED, body)
            kind, plain_len = SEALED_PREFIX.unpack_from(payload)
            stored = payload[SEALED_PREFIX.size :]
            plain = codec.decode_unchecked(kind, stored, plain_len, f"pack {raw.pack}")
        except (CorruptChunk, struct.error):
            continue
        cid = codec.chunk_id(plain)
        if vk.keyed_chunk_id(cid) == raw.chunk_id:
            out.append(ChunkLocation(cid, raw.pack, raw.offset, kind | SEALED, raw.stored_len, plain_len))
    return out


def _scan(path: Path, data: bytes) -> tuple[list[ChunkLocation], int]:
    """The complete entries of pack bytes `data`, and where the last one ends. A sealed pack's entries
    have their keyed id in place of the chunk id, codec SEALED and plain length 0."""
    pack = PackNo(int(path.stem))
    if not data.startswith(PACK_MAGIC):
        raise CorruptChunk(f"pack {pack} ({path}) has no pack header")
    sealed = data.startswith(PACK_HEADER_SEALED)
    out = []
    pos = len(PACK_HEADER)
    while pos + (ENTRY_SEALED.size if sealed else ENTRY.size) <= len(data):
        if sealed:
            cid, stored_len = ENTRY_SEALED.unpack_from(data, pos)
            loc = ChunkLocation(ChunkId(cid), pack, pos, SEALED, stored_len, 0)
        else:
            cid, codec, stored_len, plain_len = ENTRY.unpack_from(data, pos)
            loc = ChunkLocation(ChunkId(cid), pack, pos, codec, stored_len, plain_len)
        if pos + loc.entry_size > len(data):
            break
        out.append(loc)
        pos += loc.entry_size
    return out, min(pos, len(data))


def write_header(path: Path, keys: VolumeKeys | None = None) -> None:
    """Put back a pack's header, durably (its entries do not depend on it; scans and appends do)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.pwrite(fd, pack_header(keys), 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(path: Path, keys: VolumeKeys | None) -> bool:
    """Drop a partly written entry at the end of the pack a killed writer was appending to.

    Safe because the catalog only points to entries that were complete and fsync'd before their
    commit, and appends are sequential; without it the next appends would follow the torn bytes and
    a scan (recovery, fsck) would stop short of them. Returns False if the pack has a damaged header
    (or one of the other format: a pack holds one format only) and must not be appended to.
    """
    data = path.read_bytes()
    if len(data) < len(PACK_HEADER):
        return True  # no complete header yet: PackWriter._open rewrites it
    if data[: len(PACK_HEADER)] != pack_header(keys):
        return False
    try:
        end = _scan(path, data)[1]
    except CorruptChunk:
        return False
    if end < len(data):
        os.truncate(path, end)
    return True


def _flush(path: Path) -> None:
    """Write a sealed pack's data to disk early, through a descriptor of its own.

    Only a head start for `PackWriter.sync`, which fsyncs the pack again: an error met here is also
    reported there (a separate open file sees writeback errors on its own, unlike a dup()ed one).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

