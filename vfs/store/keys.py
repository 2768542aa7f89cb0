"""Keys of an encrypted volume: the master key, its subkeys, key objects, and sealing with an AEAD.

Vocabulary: the *master key* is 32 random bytes, one per encrypted volume; nothing is ever encrypted
with it directly. A *subkey* is derived from it for one *purpose* (`PURPOSES`: the keyed chunk ids the
bucket may see, pack entries, catalog checkpoints and deltas, the pointer, any other sealed object), as are
its public *id* and the chunker's seed. A *key
object* is the master key wrapped for one passphrase (or key file): Argon2id turns the passphrase into
a key-encryption key that seals the master key; several key objects can open one volume, and adding or
changing one changes no subkey, so no data is re-encrypted. To *seal* is to encrypt and authenticate
one object's bytes under a subkey, bound by its `Binding` (object kind, name, format version, key id)
to the place it belongs, so a swapped, truncated or altered object fails to *unseal*.

Formats and the reasons for each choice are in docs/design.md, "Encryption (foundation)". This module
is the only importer of `cryptography` and `argon2`, and nothing outside it sees key bytes.

`VolumeKeys` is what the rest of vfs holds: the pack writer and reader seal and open entries with it,
the sync layer seals remote objects with it (`vfs.sync.sealed`), and `vfs.store.keyring` keeps key
objects and unlocks a volume.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import blake3
from argon2.exceptions import HashingError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vfs.errors import CorruptChunk, StoreError, WrongPassphrase

KEY_LEN: Final = 32
ID_LEN: Final = 16  # bytes of a master key id or a key object id (shown as 32 hex digits)

Purpose = Literal["chunk-id", "pack", "catalog", "pointer", "object"]
KeyPurpose = Purpose | Literal["key-wrap"]  # "key-wrap": a passphrase's Argon2id key, not from the master
PURPOSES: Final[tuple[Purpose, ...]] = ("chunk-id", "pack", "catalog", "pointer", "object")

# BLAKE3's derive_key mode wants a hard-coded, globally unique context per use: "[application] [date]
# [purpose]". These strings are part of the format: changing one changes every key derived with it.
_CONTEXT = "vfs 2026-11-30 {}"
_ID_CONTEXT = _CONTEXT.format("master key id")
_SEAL_CONTEXT = "vfs 2026-11-30 object key"  # per-object key from a subkey and a random salt

SALT_LEN: Final = 32  # random bytes at the head of each sealed blob
TAG_LEN: Final = 16  # AES-GCM's authentication tag, at its end
SEAL_OVERHEAD: Final = SALT_LEN + TAG_LEN
_NONCE: Final = bytes(12)  # each object key seals exactly one message, so a fixed nonce never repeats
MAX_PLAINTEXT: Final = 2**31 - 1 - TAG_LEN  # what `cryptography` accepts in one AEAD call

KEY_OBJECT_VERSION: Final = 1


class _Secret:
    """Key bytes that never show in repr() or str(), and compare in constant time."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ValueError(f"a key must be {KEY_LEN} bytes, not {len(key)}")
        self._key = bytes(key)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Secret)
        return hmac.compare_digest(self._key, other._key)

    __hash__ = None  # type: ignore[assignment]  # keys are not dict keys: hashing would spread them

    def __reduce__(self) -> Any:
        raise TypeError(f"{type(self).__name__} is not to be pickled")


class Subkey(_Secret):
    """A key derived from the master key for one purpose. Its repr names the purpose only."""

    __slots__ = ("purpose",)

    def __init__(self, purpose: KeyPurpose, key: bytes) -> None:
        super().__init__(key)
        self.purpose = purpose

    def __repr__(self) -> str:
        return f"Subkey(purpose={self.purpose!r})"


class MasterKey(_Secret):
    """A volume's master key: 32 random bytes. Its repr shows its public id, never the key."""

    __slots__ = ()

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(KEY_LEN))

    @property
    def id(self) -> str:
        """A public fingerprint (32 hex digits): the same for every key object that wraps this key.

        Derived, not stored, so that it needs no wrapping; a BLAKE3 derive_key output reveals nothing of
        the key. Sealed objects bind it in their associated data.
        """
        return blake3.blake3(self._key, derive_key_context=_ID_CONTEXT).digest()[:ID_LEN].hex()

    def subkey(self, purpose: Purpose) -> Subkey:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}; known: {', '.join(PURPOSES)}")
        return Subkey(purpose, blake3.blake3(self._key, derive_key_context=_CONTEXT.format(purpose)).digest())

    def chunker_seed(self) -> int:
        """A secret seed (1 .. 2^63-1) for pyfastcdc's gear table, so cut points differ per volume.

        pyfastcdc XORs it into its gear table. It defeats fingerprints computed for the unkeyed chunker
        but does not close the chunk-size leak: published attacks recover keyed CDC parameters from
        chosen files (docs/design.md, "Encryption (foundation)").
        """
        digest = blake3.blake3(self._key, derive_key_context=_CONTEXT.format("chunker seed")).digest()
        # 63 bits: pyfastcdc's Cython code shifts the seed left once into a u64; 0 would mean "no seed".
        return (int.from_bytes(digest[:8], "little") >> 1) or 1

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id})"


# Sealing ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Binding:
    """Where a sealed object belongs: the associated data its seal authenticates.

    `kind` is the object's class (a purpose, or "key" for a key object), `name` its key in
    the bucket or its id, `format` the format version of its container, `key_id` the id of the master
    key (or, for a key object, the key object's own id). Unsealing under any other binding fails.
    """

    kind: str
    name: str
    format: int
    key_id: str

    def encode(self) -> bytes:
        # Length-prefixed, so no two different bindings encode alike.
        parts = [b"vfs-aad-1", self.kind.encode(), self.name.encode(), b"%d" % self.format, self.key_id.encode()]
        return b"".join(struct.pack("<I", len(p)) + p for p in parts)


def _object_key(subkey: Subkey, salt: bytes) -> AESGCM:
    # A fresh AES key per object from the subkey and a random salt (as age derives each file's payload
    # key from a random nonce), so no (key, nonce) pair is ever used twice however many objects a subkey
    # seals. Its own derive_key context keeps it apart from keyed chunk ids.
    if subkey.purpose == "chunk-id":
        raise ValueError("the 'chunk-id' subkey names chunks; it does not seal")
    return AESGCM(blake3.blake3(subkey._key + salt, derive_key_context=_SEAL_CONTEXT).digest())


def seal(subkey: Subkey, plaintext: bytes | memoryview, binding: Binding) -> bytes:
    """Encrypt and authenticate `plaintext` for the place `binding` names.

    Returns salt (32 random bytes) + AES-256-GCM ciphertext + tag (16 bytes): `SEAL_OVERHEAD` more
    bytes than the plaintext.

    Raises:
        ValueError: `plaintext` is longer than `MAX_PLAINTEXT`.
    """
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"plaintext must be at most {MAX_PLAINTEXT} bytes, not {len(plaintext)}")
    salt = os.urandom(SALT_LEN)
    return salt + _object_key(subkey, salt).encrypt(_NONCE, bytes(plaintext), binding.encode())


def unseal(subkey: Subkey, blob: bytes | memoryview, binding: Binding) -> bytes:
    """The plaintext `seal` sealed under `subkey` for `binding`.

    Raises:
        CorruptChunk: naming the object, when the blob was altered, truncated, sealed for another place
            (binding) or under another key; the plaintext is then never returned.
    """
    if len(blob) < SEAL_OVERHEAD:
        raise CorruptChunk(f"{binding.kind} {binding.name}: sealed object is truncated ({len(blob)} bytes)")
    view = memoryview(blob)
    try:
        return _object_key(subkey, bytes(view[:SALT_LEN])).decrypt(_NONCE, view[SALT_LEN:], binding.encode())
    except InvalidTag:
        raise CorruptChunk(
            f"{binding.kind} {binding.name}: fails authentication (altered, truncated, misplaced, or sealed "
            "under another key)"
        ) from None


def chunk_id_keyed(subkey: Subkey, chunk_id: bytes) -> bytes:
    """Keyed BLAKE3 of a chunk's plain id (its unkeyed BLAKE3): the id the bucket may show.

    Only the key's holder can compute it, so nobody can test whether a known file is stored. It is
    keyed over the plain id rather than the plain bytes so that a reader can compute it from the
    catalog alone, without the chunk (a PRF of a collision-resistant hash is as unguessable).
    """
    if subkey.purpose != "chunk-id":
        raise ValueError(f"keyed chunk ids take the 'chunk-id' subkey, not {subkey.purpose!r}")
    return blake3.blake3(chunk_id, key=subkey._key).digest()


class VolumeKeys:
    """An unlocked encrypted volume: its subkeys and what the store and the sync layer do with them.

    Made from the master key once per process (`unlock`); the master key itself stays inside, used only
    to wrap it for another passphrase (`wrap_for`).
    """

    __slots__ = ("_master", "_subkeys", "chunker_seed", "key_id")

    def __init__(self, master: MasterKey) -> None:
        self._master = master
        self._subkeys = {purpose: master.subkey(purpose) for purpose in PURPOSES}
        self.key_id = master.id
        self.chunker_seed = master.chunker_seed()

    def __repr__(self) -> str:
        return f"VolumeKeys(id={self.key_id})"

    def __reduce__(self) -> Any:
        raise TypeError("VolumeKeys is not to be pickled")

    def keyed_chunk_id(self, chunk_id: bytes) -> bytes:
        return chunk_id_keyed(self._subkeys["chunk-id"], chunk_id)

    def seal(self, purpose: Purpose, name: str, format: int, plaintext: bytes | memoryview) -> bytes:
        """`seal` under the `purpose` subkey, bound to (purpose, name, format, this volume's key id)."""
        return seal(self._subkeys[purpose], plaintext, Binding(purpose, name, format, self.key_id))

    def unseal(self, purpose: Purpose, name: str, format: int, blob: bytes | memoryview) -> bytes:
        """Undo `seal` (same arguments); CorruptChunk naming `name` if the blob is not what was sealed there."""
        return unseal(self._subkeys[purpose], blob, Binding(purpose, name, format, self.key_id))

    def wrap_for(self, passphrase: bytes, params: KdfParams | None = None) -> KeyObject:
        """A new key object that opens this volume with `passphrase` (no data changes)."""
        return wrap(self._master, passphrase, params)

    @classmethod
    def generate(cls) -> VolumeKeys:
        """The keys of a new volume (a random master key)."""
        return cls(MasterKey.generate())


# Key objects -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id's cost: `t` passes over `m` KiB of memory with `p` lanes, and the salt.

    The defaults are RFC 9106's second recommended option (section 4: t=3, m=64 MiB, p=4, for when 2 GiB
    is too much), which is also argon2-cffi's default profile (RFC_9106_LOW_MEMORY). For comparison,
    age's scrypt uses N=2^18, r=8 (256 MiB) and restic calibrates scrypt to about 0.5 s and 60 MiB.
    Tests pass weaker ones.
    """

    t: int = 3
    m: int = 64 * 1024
    p: int = 4
    salt: bytes = field(default_factory=lambda: os.urandom(16), repr=False)

    def check(self, where: str) -> None:
        """Refuse parameters that are too weak to mean anything or costly enough to hang the reader."""
        if not (1 <= self.t <= 64 and 8 * self.p <= self.m <= 4 * 1024 * 1024 and 1 <= self.p <= 64):
            raise StoreError(f"{where}: Argon2id parameters t={self.t} m={self.m} p={self.p} are out of range")
        if not 16 <= len(self.salt) <= 64:
            raise StoreError(f"{where}: Argon2id salt of {len(self.salt)} bytes is out of range")

    def derive(self, passphrase: bytes) -> Subkey:
        try:
            kek = hash_secret_raw(passphrase, self.salt, self.t, self.m, self.p, KEY_LEN, Type.ID)
        except HashingError as e:
            raise StoreError(f"Argon2id failed: {e}") from None
        return Subkey("key-wrap", kek)


@dataclass(frozen=True, slots=True)
class KeyObject:
    """The master key wrapped for one passphrase; JSON in the bucket (`keys/<id>`) and in the store.

    `id` is random (not derived from the passphrase or the key), `sealed` the master key sealed under
    the passphrase's Argon2id key with the binding ("key", id, version, id).
    """

    id: str
    kdf: KdfParams
    sealed: bytes = field(repr=False)
    created_ns: int
    version: int = KEY_OBJECT_VERSION

    @property
    def binding(self) -> Binding:
        return Binding("key", self.id, self.version, self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "kdf": "argon2id",
            "t": self.kdf.t,
            "m": self.kdf.m,
            "p": self.kdf.p,
            "salt": base64.b64encode(self.kdf.salt).decode(),
            "sealed": base64.b64encode(self.sealed).decode(),
            "id": self.id,
            "created_ns": self.created_ns,
        }

    @classmethod
    def from_json(cls, value: Any, where: str) -> KeyObject:
        """Read a key object; CorruptChunk naming `where` if it is malformed, StoreError if too new."""
        if not isinstance(value, dict):
            raise CorruptChunk(f"key object {where} is not a JSON object")
        version = value.get("version")
        if isinstance(version, int) and version > KEY_OBJECT_VERSION:
            raise StoreError(f"key object {where} has version {version}; this vfs reads up to 1: upgrade vfs")
        try:
            ints = [value[k] for k in ("version", "t", "m", "p", "created_ns")]
            if not all(type(i) is int for i in ints) or value["kdf"] != "argon2id":
                raise ValueError("bad field")
            key_id = value["id"]
            if not isinstance(key_id, str) or len(bytes.fromhex(key_id)) != ID_LEN:
                raise ValueError("bad id")
            salt = base64.b64decode(value["salt"], validate=True)
            sealed = base64.b64decode(value["sealed"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise CorruptChunk(f"key object {where} is malformed") from None
        kdf = KdfParams(t=value["t"], m=value["m"], p=value["p"], salt=salt)
        kdf.check(f"key object {where}")
        return cls(id=key_id, kdf=kdf, sealed=sealed, created_ns=value["created_ns"], version=value["version"])


def wrap(master: MasterKey, passphrase: bytes, params: KdfParams | None = None) -> KeyObject:
    """A new key object that opens `master` with `passphrase` (a fresh id and salt every time)."""
    if not passphrase:
        raise ValueError("passphrase must not be empty")
    params = params or KdfParams()
    params.check("new key object")
    key_id = os.urandom(ID_LEN).hex()
    binding = Binding("key", key_id, KEY_OBJECT_VERSION, key_id)
    sealed = seal(params.derive(passphrase), master._key, binding)
    return KeyObject(id=key_id, kdf=params, sealed=sealed, created_ns=time.time_ns())


def unwrap(key_object: KeyObject, passphrase: bytes) -> MasterKey:
    """The master key `key_object` wraps.

    Raises:
        WrongPassphrase: the passphrase does not open it. The message is the same whatever failed (a
            wrong passphrase and an altered key object look alike), and the tag check takes constant time.
    """
    key_object.kdf.check(f"key object {key_object.id}")
    try:
        plain = unseal(key_object.kdf.derive(passphrase), key_object.sealed, key_object.binding)
    except CorruptChunk:
        raise WrongPassphrase(f"wrong passphrase: it does not open key {key_object.id}") from None
    if len(plain) != KEY_LEN:
        raise CorruptChunk(f"key object {key_object.id} holds a key of {len(plain)} bytes")
    return MasterKey(plain)


def open_with_any(key_objects: Iterable[KeyObject], passphrase: bytes) -> tuple[VolumeKeys, KeyObject]:
    """The master key and the first of `key_objects` that `passphrase` opens.

    Tries them in order and stops at the first that opens (each try costs one Argon2id run); the time
    taken then says which key matched, which only the passphrase's holder learns anything from.

    Raises:
        WrongPassphrase: none opens. StoreError: there is none.
    """
    tried = 0
    for key_object in key_objects:
        tried += 1
        try:
            return VolumeKeys(unwrap(key_object, passphrase)), key_object
        except WrongPassphrase:
            continue
    if not tried:
        raise StoreError("the volume has no key objects")
    raise WrongPassphrase(f"wrong passphrase: it opens none of the volume's {tried} keys")
