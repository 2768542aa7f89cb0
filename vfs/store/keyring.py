"""An encrypted store's key objects (`STORE/keys/<id>`) and unlocking the store with a passphrase.

The store keeps a copy of every key object of its volume (the remote keeps them under `keys/<id>`),
so that it opens without the network. A process that unlocks a volume stops its core dumps first:
the subkeys live in its memory until it exits.
"""

from __future__ import annotations

import ctypes
import json
import resource
from pathlib import Path

from vfs.errors import CorruptChunk, StoreError
from vfs.fsutil import private_dir, replace_file
from vfs.store.keys import KeyObject, VolumeKeys, open_with_any

KEYS_DIR = "keys"
_PR_SET_DUMPABLE = 4


def key_object_bytes(key_object: KeyObject) -> bytes:
    """A key object as stored (JSON), in the store and in the bucket alike."""
    return json.dumps(key_object.to_json(), sort_keys=True).encode()


def parse_key_object(data: bytes, where: str) -> KeyObject:
    """Read a key object's bytes; CorruptChunk naming `where` if they are not one."""
    try:
        value = json.loads(data)
    except ValueError:
        raise CorruptChunk(f"key object {where} is not JSON") from None
    return KeyObject.from_json(value, where)


def key_objects(store: Path) -> list[KeyObject]:
    """The store's key objects, oldest first."""
    folder = store / KEYS_DIR
    if not folder.is_dir():
        return []
    found = [parse_key_object(p.read_bytes(), str(p)) for p in folder.iterdir() if not p.name.startswith(".")]
    return sorted(found, key=lambda k: (k.created_ns, k.id))


def save_key_object(store: Path, key_object: KeyObject) -> None:
    private_dir(store / KEYS_DIR)
    replace_file(store / KEYS_DIR / key_object.id, key_object_bytes(key_object))


def remove_key_object(store: Path, key_id: str) -> None:
    (store / KEYS_DIR / key_id).unlink(missing_ok=True)


def unlock(store: Path, passphrase: bytes, key_id: str) -> tuple[VolumeKeys, KeyObject]:
    """The keys of the encrypted store at `store`, whose master key id is `key_id`, and the key object
    `passphrase` opened.

    Raises:
        WrongPassphrase: it opens none of the store's key objects.
        StoreError: the store has no key object, or they open another volume's key.
    """
    found = key_objects(store)
    if not found:
        raise StoreError(f"{store} is encrypted but has no key objects in {store / KEYS_DIR}")
    no_core_dumps()
    keys, used = open_with_any(found, passphrase)
    if keys.key_id != key_id:
        raise StoreError(f"key object {used.id} in {store / KEYS_DIR} opens another volume's key")
    return keys, used


def no_core_dumps() -> None:
    """Keep key material out of core files: no core dumps, and not dumpable (which also keeps other
    processes of the same user from reading its memory through ptrace or /proc)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the rlimit alone
