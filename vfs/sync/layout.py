"""The remote's object names and object headers (the format README's design section describes).

Under the remote prefix:

    config                     volume id, format version and store config (JSON); written once
    packs/<hex BLAKE3>         a sealed pack file, byte for byte (its own 16-byte header carries the
                               pack format version and key id)
    catalog/<seq>-base         every block of a catalog checkpoint
    catalog/<seq>-delta        the blocks that changed since checkpoint seq-1
    catalog/latest             the pointer: the chain of base and deltas that rebuilds the newest
                               checkpoint, the BLAKE3 of the database it yields, and its writer
                               (store directory, host, time); written last

Every object but the packs starts with a 6-byte header: b"VFSO", format version, key id (0 = plain;
client-side encryption will use other ids).
"""

from __future__ import annotations

import json
from typing import Any

from vfs.errors import CorruptChunk, StoreError

MAGIC = b"VFSO"
FORMAT = 1
KEY_PLAIN = 0
HEADER_LEN = len(MAGIC) + 2

CONFIG_KEY = "config"
PROBE_PREFIX = "lease-probe/"  # objects that only probe whether the endpoint honours conditional PUTs
LATEST_KEY = "catalog/latest"


def pack_key(digest: bytes) -> str:
    return "packs/" + digest.hex()


def catalog_key(seq: int, kind: str) -> str:
    return f"catalog/{seq:016d}-{kind}"


def wrap(payload: bytes) -> bytes:
    """An object body: the header, then `payload`."""
    return MAGIC + bytes([FORMAT, KEY_PLAIN]) + payload


def unwrap(data: bytes, key: str) -> bytes:
    """The payload of the object `key`; CorruptChunk / StoreError if the header is wrong or unknown."""
    if len(data) < HEADER_LEN or data[: len(MAGIC)] != MAGIC:
        raise CorruptChunk(f"remote object {key} has no vfs object header")
    version, key_id = data[len(MAGIC)], data[len(MAGIC) + 1]
    if version > FORMAT:
        raise StoreError(f"remote object {key} has format {version}; this vfs reads up to {FORMAT}: upgrade vfs")
    if key_id != KEY_PLAIN:
        raise StoreError(f"remote object {key} is encrypted (key id {key_id}); this vfs cannot read it")
    return data[HEADER_LEN:]


def wrap_json(value: dict[str, Any]) -> bytes:
    return wrap(json.dumps(value, sort_keys=True).encode())


def unwrap_json(data: bytes, key: str) -> dict[str, Any]:
    try:
        value = json.loads(unwrap(data, key))
    except ValueError as e:
        raise CorruptChunk(f"remote object {key} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise CorruptChunk(f"remote object {key} is not a JSON object")
    return value
