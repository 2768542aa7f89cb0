"""An encrypted volume's remote: every object but the packs, the key objects and `config`, sealed.

`SealedBackend` wraps the backend a store's sync talks to. What goes in is what a plain volume stores
(`VFSO`, format, key id 0, payload: `vfs.sync.layout`); what reaches the bucket is `VFSO`, format, key id
1, then the payload sealed under the subkey of its purpose (the pointer's, the checkpoints', or
`object` for anything else) and bound to the object's key, format and the volume's key id, so a
swapped, altered or truncated object fails to open. Reading undoes it, and refuses an object of
such a key that is *not* sealed (it cannot be the volume's: a bucket's owner could have put it there).

Pack objects are already sealed entry by entry (`vfs.store.packs`, format 2), byte for byte the local
files; key objects seal the master key themselves; `config` says, in the clear, that the volume is
encrypted and with which key id (docs/design.md, "Encryption").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from vfs.backend import Backend
from vfs.backend.base import Failure
from vfs.errors import CorruptChunk, StoreError
from vfs.store.keyring import key_object_bytes, key_objects, parse_key_object
from vfs.store.keys import MAX_PLAINTEXT, KeyObject, Purpose, VolumeKeys
from vfs.sync import layout

KEY_SEALED = 1
KEYS_PREFIX = "keys/"


def is_sealed_key(key: str) -> bool:
    """Whether the object under `key` is sealed by `SealedBackend` (not a pack, key object, config, or a
    probe of conditional PUTs, which holds nothing)."""
    return not key.startswith(("packs/", KEYS_PREFIX, layout.PROBE_PREFIX)) and key != layout.CONFIG_KEY


def _purpose(key: str) -> Purpose:
    if key == layout.LATEST_KEY:
        return "pointer"
    return "catalog" if key.startswith("catalog/") else "object"


def sealing(backend: Backend, keys: VolumeKeys) -> Backend:
    """`backend` sealing with `keys`: wrapped, unless it is so already."""
    if isinstance(backend, SealedBackend) and backend.key_id == keys.key_id:
        return backend
    return SealedBackend(backend, keys)


class SealedBackend(Backend):
    def __init__(self, inner: Backend, keys: VolumeKeys) -> None:
        self._inner = inner
        self._keys = keys
        self.url = inner.url
        self.key_id = keys.key_id

    def seal(self, key: str, data: bytes) -> bytes:
        """The bucket's bytes for the plain object `data` (a `layout.wrap`ped one) under `key`."""
        payload = layout.unwrap(data, key)
        version = data[len(layout.MAGIC)]
        if len(payload) > MAX_PLAINTEXT:
            raise StoreError(f"remote object {key} is {len(payload)} bytes: an encrypted volume seals at most "
                             f"{MAX_PLAINTEXT} bytes in one object")
        return layout.MAGIC + bytes([version, KEY_SEALED]) + self._keys.seal(_purpose(key), key, version, payload)

    def open(self, key: str, data: bytes) -> bytes:
        """Undo `seal`: the plain object. CorruptChunk naming `key` if it is not this volume's sealed one."""
        if len(data) < layout.HEADER_LEN or data[: len(layout.MAGIC)] != layout.MAGIC:
            raise CorruptChunk(f"remote object {key} has no vfs object header")
        version, key_id = data[len(layout.MAGIC)], data[len(layout.MAGIC) + 1]
        if key_id != KEY_SEALED:
            raise CorruptChunk(f"remote object {key} is not encrypted, but the volume is: not used")
        if version > layout.FORMAT:
            layout.unwrap(data, key)  # its "upgrade vfs" error
        payload = self._keys.unseal(_purpose(key), key, version, data[layout.HEADER_LEN :])
        return layout.MAGIC + bytes([version, layout.KEY_PLAIN]) + payload

    def put(self, key: str, data: bytes) -> None:
        self._inner.put(key, self.seal(key, data) if is_sealed_key(key) else data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._inner.put_if_absent(key, self.seal(key, data) if is_sealed_key(key) else data)

    def get(self, key: str) -> bytes:
        data = self._inner.get(key)
        return self.open(key, data) if is_sealed_key(key) else data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        if is_sealed_key(key):
            return self.get(key)[offset : offset + length]  # a sealed object opens only whole
        return self._inner.get_range(key, offset, length)

    def head(self, key: str) -> int | None:
        return self._inner.head(key)

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        return self._inner.list(prefix, start_after=start_after)

    def delete(self, key: str) -> None:
        self._inner.delete(key)

    def is_transient(self, exc: BaseException) -> bool:
        return self._inner.is_transient(exc)

    def failure(self) -> Failure | None:
        return self._inner.failure()

    def close(self) -> None:
        self._inner.close()


def key_object_key(key_id: str) -> str:
    return KEYS_PREFIX + key_id


def remote_key_objects(backend: Backend) -> list[KeyObject]:
    """The key objects the bucket holds (oldest first); CorruptChunk naming one that is malformed."""
    found = [parse_key_object(backend.get(key), key) for key in backend.list(KEYS_PREFIX)]
    return sorted(found, key=lambda k: (k.created_ns, k.id))


def publish_key_objects(backend: Backend, store: Path) -> int:
    """Put every key object of the store that the bucket lacks (none is ever deleted here: another
    machine may have added one; `vfs key remove` deletes). Returns how many were put."""
    remote = set(backend.list(KEYS_PREFIX))
    missing = [k for k in key_objects(store) if key_object_key(k.id) not in remote]
    for key_object in missing:
        backend.put(key_object_key(key_object.id), key_object_bytes(key_object))
    return len(missing)
