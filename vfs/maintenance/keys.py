"""An encrypted volume's key objects: list, add, remove (`vfs key`).

A key object wraps the volume's master key for one passphrase or key file; adding or removing one
changes no data (nothing is re-encrypted or re-uploaded). The store keeps every key object
(`STORE/keys/`); the bucket keeps them under `keys/` once the volume has been synced there, so that a
clone can open the volume. Changes go to the bucket first, then the store: a key added is usable by a
clone as soon as the command returns, and a key removed fails no later than that. A key object
another machine added to the bucket is left alone here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vfs.backend import Backend
from vfs.errors import UsageError
from vfs.store.keyring import key_object_bytes, key_objects, remove_key_object, save_key_object
from vfs.store.keys import KdfParams, KeyObject, VolumeKeys
from vfs.sync import layout
from vfs.sync.sealed import key_object_key


@dataclass(frozen=True)
class KeyInfo:
    id: str
    created_ns: int
    kdf: str  # "argon2id t=3 m=65536 p=4"
    in_use: bool  # the one the passphrase given opened


def list_keys(store: Path, used: str | None = None) -> list[KeyInfo]:
    return [KeyInfo(k.id, k.created_ns, f"argon2id t={k.kdf.t} m={k.kdf.m} p={k.kdf.p}", k.id == used)
            for k in key_objects(store)]


def _published(backend: Backend | None) -> Backend | None:
    """The bucket, if the volume has been synced there (else its first sync publishes the key objects)."""
    if backend is None or backend.head(layout.CONFIG_KEY) is None:
        return None
    return backend


def add_key(store: Path, keys: VolumeKeys, secret: bytes, backend: Backend | None,
            kdf: KdfParams | None = None) -> KeyObject:
    """A new key object that opens the volume with `secret`, in the bucket (if synced) and the store."""
    key_object = keys.wrap_for(secret, kdf)
    if (bucket := _published(backend)) is not None:
        bucket.put(key_object_key(key_object.id), key_object_bytes(key_object))
    save_key_object(store, key_object)
    return key_object


def remove_key(store: Path, key_id: str, used: KeyObject, backend: Backend | None) -> None:
    """Delete the key object `key_id` from the bucket (if synced) and the store.

    Raises:
        UsageError: no such key, the last key, or the one the caller's passphrase opened (`used`).
    """
    found = {k.id for k in key_objects(store)}
    if key_id not in found:
        raise UsageError(f"the volume has no key {key_id}; 'vfs key list' shows its keys")
    if found == {key_id}:
        raise UsageError(f"key {key_id} is the volume's last key: removing it would lock the volume for good")
    if key_id == used.id:
        raise UsageError(f"key {key_id} is the one your passphrase opened: give another key's passphrase to remove "
                         "it, or change it with 'vfs key passwd'")
    if (bucket := _published(backend)) is not None:
        bucket.delete(key_object_key(key_id))
    remove_key_object(store, key_id)
