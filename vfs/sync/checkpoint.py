"""Catalog checkpoints: a consistent copy of the catalog, uploaded incrementally in fixed blocks.

The copy (SQLite online backup) is cut into blocks of `BLOCK` bytes; each block's BLAKE3 is kept in a
local manifest (`STORE/sync/checkpoint.json`). A checkpoint uploads a *delta* of the blocks whose
hash changed, or a *base* of all blocks every `MAX_DELTAS` deltas or once the deltas outgrow the base.
Object payload (zstd): block size u32, database size u64, block count u32, then per block its index
u32, length u32 and bytes. The pointer names the chain (base first) and the BLAKE3 of the database;
a restore applies the chain in order and checks that hash before using the file.

A checkpoint is made in two steps around the pack uploads: `prepare` takes the copy and seals the
open pack (so every chunk the copy names is in a sealed pack); once those packs are uploaded,
`finish` records their remote rows in the copy and uploads the objects, then the pointer.

Remote head check: the pointer also records its *writer* (store directory, host, time). A store
publishes only over the head it last published or cloned from (the manifest's seq, chain and
database hash) or over none; any other head means another store has written since, and publishing
would erase its commits: `check_head` raises RemoteConflict instead (docs/design.md). Which store may
publish at all is the writer lease's to say (`vfs.sync.lease`): `finish` takes its epoch and its check.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vfs.backend import Backend
from vfs.catalog import copies
from vfs.catalog.catalog import CATALOG_FILE
from vfs.errors import BackendNotFound, CorruptChunk, RemoteConflict, StoreError
from vfs.fsutil import private_dir, replace_file
from vfs.store import codec
from vfs.sync import layout
from vfs.types import PackNo

BLOCK = 256 * 1024
MAX_DELTAS = 16
_HEAD = struct.Struct("<IQI")
_ENTRY = struct.Struct("<II")
STATE_DIR = "sync"
MANIFEST = "checkpoint.json"
SNAPSHOT = "catalog.snapshot"
PULLED = "pulled.db"  # the database of the checkpoint a clone or pull last installed (vfs.sync.pull)


@dataclass
class Manifest:
    """What the newest uploaded checkpoint holds (local state, rewritten after each checkpoint)."""

    seq: int = 0
    chain: list[str] = field(default_factory=list)  # object keys, base first
    block_size: int = BLOCK
    hashes: list[str] = field(default_factory=list)  # hex BLAKE3 per block of the checkpointed db
    base_size: int = 0  # bytes of the chain's base object
    deltas_size: int = 0  # bytes of its deltas
    head_commit: int = 0  # catalog head the checkpoint holds
    remote_packs: int = 0  # remote_packs rows it holds
    time_ns: int = 0  # when it was completed
    db_hash: str = ""  # hex BLAKE3 of the checkpointed database, as in the pointer ("" before vfs recorded it)
    # The head ({"seq", "chain", "db_hash"}) this checkpoint's pointer replaces, while that pointer's PUT
    # is not known to have landed (None once it has): the remote may then hold either, both this store's.
    replaces: dict[str, Any] | None = None
    epoch: int = 0  # the writer epoch of the pointer it published or cloned from (0: before the writer lease)

    def head(self) -> dict[str, Any]:
        """What identifies this checkpoint's pointer (see `is_seen`)."""
        return {"seq": self.seq, "chain": self.chain, "db_hash": self.db_hash}

    @classmethod
    def load(cls, store: Path) -> Manifest | None:
        """The manifest, or None if the store has never published nor cloned.

        Raises:
            StoreError: the file is damaged, or written by a newer vfs (a field this one does not know):
                guessing what the store last published could let it publish over another store's head.
        """
        path = store / STATE_DIR / MANIFEST
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as e:  # bad JSON, not an object, an unknown or missing field
            raise StoreError(f"{path} is damaged or from a newer vfs ({e}); the store cannot tell which "
                             "checkpoint it last published, so it does not sync") from None

    def save(self, store: Path) -> None:
        d = store / STATE_DIR
        private_dir(d)
        replace_file(d / MANIFEST, json.dumps(asdict(self)).encode())


@dataclass
class Prepared:
    snapshot: Path
    head_commit: int
    max_pack: int  # highest pack the copy's chunks name (0 if none)


def prepare(store: Path, backup_to: Any, seal: Any) -> Prepared:
    """Take a consistent copy of the catalog and seal the pack its chunks may still be appended to.

    `backup_to(path)` is Catalog.backup_to, `seal()` is ChunkStore.seal (returns the highest sealed
    pack).
    """
    d = store / STATE_DIR
    private_dir(d)
    snap = d / SNAPSHOT
    snap.unlink(missing_ok=True)
    backup_to(snap)
    head, max_pack = copies.head_and_max_pack(snap)
    sealed = seal()
    if max_pack > sealed:
        raise StoreError(f"catalog names pack {max_pack} but only packs up to {sealed} are sealed")
    return Prepared(snap, head, max_pack)


def needed(prepared: Prepared, previous: Manifest | None, remote_count: int) -> bool:
    """Whether the copy differs from what the remote's newest checkpoint holds (or may not hold it)."""
    return (previous is None or previous.replaces is not None or previous.head_commit != prepared.head_commit
            or previous.remote_packs != remote_count)


def finish(
    store: Path, backend: Backend, prepared: Prepared, remote_packs: Mapping[PackNo, tuple[str, int]],
    previous: Manifest | None, volume: str, *, new_base: bool = False, epoch: int = 0,
    fence: Callable[[], None] = lambda: None, fenced_below: int = 0,
) -> tuple[Manifest, int]:
    """Record the remote packs in the copy, upload it as a base or delta, then the pointer.

    `previous` is the newest checkpoint this store published or cloned: the remote's head must still
    be that one. `new_base` (a repair of a broken chain) uploads a base, and may replace a pointer
    that cannot be read. Returns the new manifest (also saved) and the bytes uploaded.

    `epoch` is the writer lease's (docs/design.md "Writer lease"): it goes into the pointer and into the
    object's key (so a writer that lost the lease never overwrites the new writer's object of the same
    seq), and `fence()` runs after the object's PUT and before the manifest is saved and the pointer
    put: it raises if the lease is no longer held. `fenced_below`: see `check_head`.

    Raises:
        StoreError: the copy names a pack the remote lacks (the caller did not upload it first).
        RemoteConflict: another store has moved the remote's head; nothing was uploaded.
        LeaseHeld: raised by `fence`: the object is uploaded (never named), the manifest and pointer are not.
    """
    snap = prepared.snapshot
    copies.record_remote_packs(snap, remote_packs)
    data = snap.read_bytes()
    hashes = [codec.chunk_id(data[i : i + BLOCK]).hex() for i in range(0, len(data), BLOCK)]
    seq = (previous.seq if previous else 0) + 1
    base = (new_base or previous is None or previous.block_size != BLOCK or len(previous.chain) > MAX_DELTAS
            or not previous.chain)
    changed = range(len(hashes)) if base else [
        i for i, h in enumerate(hashes) if i >= len(previous.hashes) or previous.hashes[i] != h  # type: ignore[union-attr]
    ]
    body = layout.wrap(codec.compress(_encode(data, changed)))
    if not base and previous is not None and previous.deltas_size + len(body) > previous.base_size:
        base, changed = True, range(len(hashes))
        body = layout.wrap(codec.compress(_encode(data, changed)))
    kind = "base" if base else "delta"
    key = layout.catalog_key(seq, f"e{epoch}-{kind}" if epoch else kind)  # catalog/<seq>-e<epoch>-<kind>
    chain = [key] if base else [*previous.chain, key]  # type: ignore[union-attr]
    # Checked again right before writing: the object below may share its key with the other store's.
    check_head(backend, previous, replace_unreadable=new_base, fenced_below=fenced_below)
    backend.put(key, body)
    db_hash = codec.chunk_id(data).hex()
    manifest = Manifest(
        seq=seq, chain=chain, hashes=hashes,
        base_size=len(body) if base else previous.base_size,  # type: ignore[union-attr]
        deltas_size=0 if base else previous.deltas_size + len(body),  # type: ignore[union-attr]
        head_commit=prepared.head_commit, remote_packs=len(remote_packs), time_ns=time.time_ns(), db_hash=db_hash,
        replaces=previous.head() if previous is not None else None, epoch=epoch,
    )
    fence()  # the writer lease, checked last: a writer that lost it never makes the pointer name its state
    # Saved before the pointer: one that lands but is not recorded (a kill, a lost answer) would be taken
    # for another store's head. Its objects are all uploaded, so either head is a valid base for the next.
    manifest.save(store)
    pointer = {"seq": seq, "chain": chain, "db_size": len(data), "db_hash": db_hash, "block_size": BLOCK,
               "volume": volume, "writer": {"store": str(store), "host": socket.gethostname(),
                                            "time_ns": time.time_ns()}, "epoch": epoch}
    backend.put(layout.LATEST_KEY, layout.wrap_json(pointer))
    manifest.replaces = None
    manifest.save(store)
    snap.unlink(missing_ok=True)
    return manifest, len(body)


def _encode(data: bytes, blocks: Any) -> bytes:
    parts = []
    count = 0
    for i in blocks:
        piece = data[i * BLOCK : (i + 1) * BLOCK]
        parts.append(_ENTRY.pack(i, len(piece)) + piece)
        count += 1
    return _HEAD.pack(BLOCK, len(data), count) + b"".join(parts)


def restore(backend: Backend, store: Path) -> tuple[dict[str, Any], Manifest]:
    """Rebuild the newest checkpoint's catalog as `store/catalog.db`, verified; (pointer, manifest).

    The checkpoint's database is also kept as `store/sync/pulled.db`, so that `vfs.sync.pull` can later
    apply only the deltas that follow it.

    Raises:
        BackendNotFound: the remote holds no checkpoint.
        CorruptChunk: an object is damaged, or the result does not match the pointer's hash.
    """
    pointer = layout.unwrap_json(backend.get(layout.LATEST_KEY), layout.LATEST_KEY)
    buf, _fetched = rebuild(backend, pointer)
    private_dir(store / STATE_DIR)
    replace_file(store / STATE_DIR / PULLED, buf)
    replace_file(store / CATALOG_FILE, buf)
    return pointer, manifest_of(pointer, buf)


def rebuild(backend: Backend, pointer: dict[str, Any], start: bytearray | None = None,
            applied: int = 0) -> tuple[bytearray, int]:
    """The database `pointer` names, checked against its BLAKE3; (database, bytes of objects fetched).

    `start`, with `applied`: the database of the pointer's first `applied` chain objects, to which only
    the objects after them are applied (a pull's incremental step); without it the whole chain is fetched.

    Raises:
        CorruptChunk: an object is damaged, or the result does not match the pointer's hash.
    """
    size = int(pointer["db_size"])
    chain = list(pointer["chain"])
    if start is None:
        buf, applied = bytearray(size), 0
    else:
        buf = start
        if len(buf) > size:
            raise CorruptChunk(f"{layout.LATEST_KEY} names a database smaller than the one it follows")
        buf.extend(bytes(size - len(buf)))
    fetched = 0
    for key in chain[applied:]:
        data = backend.get(key)
        fetched += len(data)
        _apply(buf, codec.decompress(layout.unwrap(data, key), f"remote object {key}"), key)
    if codec.chunk_id(bytes(buf)).hex() != pointer["db_hash"]:
        raise CorruptChunk(f"the catalog rebuilt from {layout.LATEST_KEY} does not match its BLAKE3; not used")
    return buf, fetched


def _apply(buf: bytearray, payload: bytes, key: str) -> None:
    """Copy the blocks of one checkpoint object's payload into `buf`."""
    try:
        block, _db_size, count = _HEAD.unpack_from(payload, 0)
        pos = _HEAD.size
        for _ in range(count):
            index, length = _ENTRY.unpack_from(payload, pos)
            pos += _ENTRY.size
            start = index * block
            if start + length > len(buf):
                raise CorruptChunk(f"remote object {key}: block {index} lies past the database's end")
            buf[start : start + length] = payload[pos : pos + length]
            pos += length
    except struct.error:
        raise CorruptChunk(f"remote object {key} is truncated") from None


def manifest_of(pointer: dict[str, Any], db: bytes | bytearray) -> Manifest:
    """The manifest of a store whose catalog is the checkpoint `pointer` names, `db` (a clone, a pull)."""
    hashes = [codec.chunk_id(bytes(db[i : i + BLOCK])).hex() for i in range(0, len(db), BLOCK)]
    return Manifest(seq=int(pointer["seq"]), chain=list(pointer["chain"]), hashes=hashes, time_ns=time.time_ns(),
                    db_hash=str(pointer["db_hash"]), epoch=pointer_epoch(pointer))


def read_pointer(backend: Backend) -> dict[str, Any] | None:
    """The remote's pointer (`catalog/latest`), or None if it has none.

    Raises:
        CorruptChunk: the pointer cannot be read.
    """
    try:
        return layout.unwrap_json(backend.get(layout.LATEST_KEY), layout.LATEST_KEY)
    except BackendNotFound:
        return None


def is_seen(pointer: dict[str, Any], manifest: Manifest | None) -> bool:
    """Whether `pointer` is the head `manifest` records (this store published it, or cloned from it), or
    the one its pointer replaces while that PUT is unconfirmed."""
    if manifest is None:
        return False
    heads = [manifest.head(), *([manifest.replaces] if manifest.replaces is not None else [])]
    # A manifest written before vfs recorded db_hash is matched by seq and chain alone.
    return any(pointer.get("seq") == h["seq"] and pointer.get("chain") == h["chain"]
               and h["db_hash"] in ("", pointer.get("db_hash")) for h in heads)


def pointer_epoch(pointer: dict[str, Any]) -> int:
    """The writer epoch a pointer carries (0: written before the writer lease)."""
    epoch = pointer.get("epoch", 0)
    return epoch if isinstance(epoch, int) else 0


def check_head(backend: Backend, seen: Manifest | None, *, replace_unreadable: bool = False,
               fenced_below: int = 0) -> None:
    """Refuse to go on unless the remote's head is the one `seen` records, or the remote has none.

    A remote without a pointer has no head to lose. `replace_unreadable`: a pointer that cannot be
    read (damaged) does not stop a repair, which replaces it. `fenced_below`: the writer lease's epoch,
    once its holder has checked the head after taking it: a pointer of a lower epoch that it has not
    seen was put later by a writer that had lost the lease (a PUT in flight when it was taken), and is
    replaced (docs/design.md "Writer lease").

    Raises:
        RemoteConflict: another store has published a checkpoint since (the message says which and when).
        CorruptChunk: the pointer cannot be read (unless `replace_unreadable`).
    """
    try:
        pointer = read_pointer(backend)
    except CorruptChunk as e:
        if replace_unreadable:
            return
        # Whose it is cannot be told (damaged, or another encrypted volume's, which only its key opens):
        # not replaced by a sync, only by a repair asked for.
        raise CorruptChunk(f"{e}; if the prefix holds no other volume, 'vfs fsck --remote --repair' replaces"
                           " it") from None
    if pointer is None or is_seen(pointer, seen) or pointer_epoch(pointer) < fenced_below:
        return
    seq = pointer.get("seq")
    if seen is not None and isinstance(seq, int) and seq < seen.seq and not replace_unreadable:
        # Only a replayed or restored old pointer goes back: a store publishes over the head it saw.
        # A conflict, not damage: the uploader stops for good instead of retrying (a repair replaces it).
        raise RemoteConflict(f"{layout.LATEST_KEY} on {backend.url} names checkpoint {seq}, older than"
                             f" checkpoint {seen.seq} this store has seen: the pointer was rolled back; nothing is"
                             " published over it ('vfs fsck --remote --repair' does)")
    raise RemoteConflict(f"another store has written to {backend.url} since this store last synced: checkpoint"
                         f" {pointer.get('seq')} was published by {written_by(pointer)}")


def written_by(pointer: dict[str, Any]) -> str:
    """Who wrote `pointer` and when, for messages: "the store DIR on HOST at TIME"."""
    writer = pointer.get("writer")
    if not isinstance(writer, dict):
        return "a store whose name is not recorded (an older vfs)"
    try:
        when = datetime.fromtimestamp(int(writer["time_ns"]) / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        when = "an unknown time"
    return f"the store {writer.get('store')} on {writer.get('host')} at {when}"


def check_config(backend: Backend, volume: str, config: dict[str, Any], seen: Manifest | None, *,
                 replace_unreadable: bool = False) -> None:
    """Write the remote's `config` object, or check that it names this volume.

    `seen` and `replace_unreadable` are `check_head`'s: a prefix without a config but with a head this
    store has not seen (the config object lost) is not this store's to claim.

    Raises:
        RemoteConflict: the prefix holds another volume, or another store's head (nothing is written).
    """
    try:
        found = layout.unwrap_json(backend.get(layout.CONFIG_KEY), layout.CONFIG_KEY)
    except BackendNotFound:
        found = None
    if found is None:
        check_head(backend, seen, replace_unreadable=replace_unreadable)
        backend.put(layout.CONFIG_KEY, layout.wrap_json({"format": layout.FORMAT, "volume": volume,
                                                         "store_config": config}))
    elif found.get("volume") != volume:
        try:
            pointer = read_pointer(backend)
        except CorruptChunk:
            pointer = None
        last = f", last written by {written_by(pointer)}" if pointer is not None else ""
        raise RemoteConflict(f"{backend.url} holds another store's volume ({found.get('volume')}){last}")
