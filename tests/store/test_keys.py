"""Master keys, subkeys, key objects and sealing: vfs.store.keys."""

from __future__ import annotations

import json
import os
import pickle

import blake3
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vfs.errors import CorruptChunk, StoreError, WrongPassphrase
from vfs.store import keys
from vfs.store.keys import Binding, KdfParams, KeyObject, MasterKey, VolumeKeys

# Argon2id at its minimum cost: the tests check the construction, not the strength.
WEAK = dict(t=1, m=64, p=1)


def weak() -> KdfParams:
    return KdfParams(**WEAK)


def test_wrap_unwrap_round_trip() -> None:
    master = MasterKey.generate()
    key_object = keys.wrap(master, b"correct horse", weak())
    assert keys.unwrap(key_object, b"correct horse") == master


def test_key_object_json_round_trip_has_the_documented_fields() -> None:
    master = MasterKey.generate()
    key_object = keys.wrap(master, b"pw", weak())
    value = json.loads(json.dumps(key_object.to_json()))
    assert set(value) == {"version", "kdf", "t", "m", "p", "salt", "sealed", "id", "created_ns"}
    assert value["kdf"] == "argon2id" and (value["t"], value["m"], value["p"]) == (1, 64, 1)
    again = KeyObject.from_json(value, "keys/x")
    assert again == key_object
    assert keys.unwrap(again, b"pw") == master


def test_wrong_passphrase_is_its_own_error_with_its_own_exit_code() -> None:
    key_object = keys.wrap(MasterKey.generate(), b"right", weak())
    with pytest.raises(WrongPassphrase) as info:
        keys.unwrap(key_object, b"wrong")
    assert info.value.exit_code not in {1, 2, 3, 4, 5, 6}
    assert b"right" not in str(info.value).encode() and "wrong" not in str(info.value).replace("wrong passphrase", "")


def test_a_tampered_key_object_looks_like_a_wrong_passphrase() -> None:
    key_object = keys.wrap(MasterKey.generate(), b"pw", weak())
    value = key_object.to_json()
    value["id"] = os.urandom(16).hex()  # moved to another name: the binding no longer matches
    with pytest.raises(WrongPassphrase):
        keys.unwrap(KeyObject.from_json(value, "keys/moved"), b"pw")


def test_two_key_objects_open_one_master_and_rewrapping_changes_no_subkey() -> None:
    master = MasterKey.generate()
    first = keys.wrap(master, b"alice", weak())
    second = keys.wrap(master, b"bob", weak())
    assert first.id != second.id and first.kdf.salt != second.kdf.salt
    a, b = keys.unwrap(first, b"alice"), keys.unwrap(second, b"bob")
    assert a.id == b.id == master.id
    for purpose in keys.PURPOSES:
        assert a.subkey(purpose) == b.subkey(purpose) == master.subkey(purpose)
    # "passwd": a new key object for the same passphrase holder; data sealed before still opens.
    blob = keys.seal(master.subkey("pack"), b"data", Binding("pack", "packs/1", 1, master.id))
    renewed = keys.unwrap(keys.wrap(a, b"alice 2", weak()), b"alice 2")
    assert keys.unseal(renewed.subkey("pack"), blob, Binding("pack", "packs/1", 1, master.id)) == b"data"


def test_open_with_any_finds_the_matching_key_object() -> None:
    master = MasterKey.generate()
    objects = [keys.wrap(master, b"one", weak()), keys.wrap(master, b"two", weak())]
    opened, which = keys.open_with_any(objects, b"two")
    assert opened.key_id == master.id and which is objects[1]
    with pytest.raises(WrongPassphrase):
        keys.open_with_any(objects, b"three")
    with pytest.raises(StoreError):
        keys.open_with_any([], b"one")


def test_subkeys_differ_per_purpose_and_per_master() -> None:
    master = MasterKey.generate()
    subkeys = [master.subkey(p) for p in keys.PURPOSES]
    assert len({s._key for s in subkeys}) == len(keys.PURPOSES)
    assert MasterKey.generate().subkey("pack") != master.subkey("pack")
    with pytest.raises(ValueError, match="unknown key purpose"):
        master.subkey("nonsense")  # type: ignore[arg-type]


def test_subkey_derivation_is_blake3_derive_key_with_the_documented_context() -> None:
    raw = bytes(range(32))
    master = MasterKey(raw)
    assert master.subkey("pack")._key == blake3.blake3(raw, derive_key_context="vfs 2026-11-30 pack").digest()
    assert master.id == blake3.blake3(raw, derive_key_context="vfs 2026-11-30 master key id").digest()[:16].hex()


def test_chunker_seed_is_secret_per_volume_and_cuts_differently() -> None:
    from pyfastcdc import FastCDC

    one, two = MasterKey.generate(), MasterKey.generate()
    assert one.chunker_seed() == one.chunker_seed() != two.chunker_seed()
    assert 0 < one.chunker_seed() < 2**63
    data = os.urandom(1 << 20)

    def cuts(seed: int) -> list[int]:
        return [c.offset for c in FastCDC(16384, seed=seed).cut_buf(data)]

    assert cuts(one.chunker_seed()) != cuts(0) != cuts(two.chunker_seed())


def test_default_kdf_params_are_rfc_9106_low_memory() -> None:
    params = KdfParams()
    assert (params.t, params.m, params.p, len(params.salt)) == (3, 65536, 4, 16)


@pytest.mark.parametrize(
    "change", [{"t": 0}, {"m": 10**9}, {"p": 0}, {"salt": "AAAA"}, {"kdf": "scrypt"}, {"sealed": "!!"}, {"id": "xy"}]
)
def test_malformed_or_hostile_key_objects_are_refused(change: dict[str, object]) -> None:
    value = keys.wrap(MasterKey.generate(), b"pw", weak()).to_json() | change
    with pytest.raises(StoreError, match="keys/bad"):
        KeyObject.from_json(value, "keys/bad")


def test_a_newer_key_object_asks_for_an_upgrade() -> None:
    value = keys.wrap(MasterKey.generate(), b"pw", weak()).to_json() | {"version": 2}
    with pytest.raises(StoreError, match="upgrade vfs"):
        KeyObject.from_json(value, "keys/new")


def test_seal_unseal_round_trip() -> None:
    sub = MasterKey.generate().subkey("catalog")
    where = Binding("checkpoint", "catalog/0000000000000001-base", 1, "k")
    for plain in (b"", b"x", os.urandom(100_000)):
        blob = keys.seal(sub, plain, where)
        assert len(blob) == len(plain) + keys.SEAL_OVERHEAD
        assert keys.unseal(sub, blob, where) == plain
        assert keys.unseal(sub, memoryview(blob), where) == plain


def test_sealing_twice_gives_different_blobs() -> None:
    sub = MasterKey.generate().subkey("pointer")
    where = Binding("pointer", "catalog/latest", 1, "k")
    assert keys.seal(sub, b"same", where) != keys.seal(sub, b"same", where)


MASTER = MasterKey.generate()
WHERE = Binding("pack", "packs/aaaa", 2, MASTER.id)
BLOB = keys.seal(MASTER.subkey("pack"), b"the pack's bytes " * 100, WHERE)


def flipped(i: int) -> bytes:
    b = bytearray(BLOB)
    b[i] ^= 0x01
    return bytes(b)


@pytest.mark.parametrize(
    ("name", "subkey", "blob", "binding"),
    [
        ("flipped salt byte", MASTER.subkey("pack"), flipped(0), WHERE),
        ("flipped ciphertext byte", MASTER.subkey("pack"), flipped(100), WHERE),
        ("flipped tag byte", MASTER.subkey("pack"), flipped(-1), WHERE),
        ("truncated", MASTER.subkey("pack"), BLOB[:-1], WHERE),
        ("truncated below overhead", MASTER.subkey("pack"), BLOB[:20], WHERE),
        ("extended", MASTER.subkey("pack"), BLOB + b"\0", WHERE),
        ("swapped object name", MASTER.subkey("pack"), BLOB, Binding("pack", "packs/bbbb", 2, MASTER.id)),
        ("other kind", MASTER.subkey("pack"), BLOB, Binding("checkpoint", "packs/aaaa", 2, MASTER.id)),
        ("other format", MASTER.subkey("pack"), BLOB, Binding("pack", "packs/aaaa", 3, MASTER.id)),
        ("other key id", MASTER.subkey("pack"), BLOB, Binding("pack", "packs/aaaa", 2, "0" * 32)),
        ("other purpose's subkey", MASTER.subkey("catalog"), BLOB, WHERE),
        ("other master", MasterKey.generate().subkey("pack"), BLOB, WHERE),
    ],
)
def test_any_damage_or_misplacement_is_corrupt_chunk_naming_the_object(
    name: str, subkey: keys.Subkey, blob: bytes, binding: Binding
) -> None:
    with pytest.raises(CorruptChunk, match=binding.name):
        keys.unseal(subkey, blob, binding)


def test_the_object_key_is_derived_from_the_subkey_and_the_blob_salt() -> None:
    sub = MASTER.subkey("pack")
    salt = BLOB[: keys.SALT_LEN]
    object_key = blake3.blake3(sub._key + salt, derive_key_context="vfs 2026-11-30 object key").digest()
    plain = AESGCM(object_key).decrypt(bytes(12), BLOB[keys.SALT_LEN :], WHERE.encode())
    assert plain == keys.unseal(sub, BLOB, WHERE)


def test_the_chunk_id_subkey_does_not_seal() -> None:
    with pytest.raises(ValueError, match="does not seal"):
        keys.seal(MASTER.subkey("chunk-id"), b"x", WHERE)


def test_binding_encoding_is_unambiguous() -> None:
    assert Binding("a", "bc", 1, "k").encode() != Binding("ab", "c", 1, "k").encode()
    assert Binding("a", "b", 12, "k").encode() != Binding("a", "b", 1, "2k").encode()


def test_keyed_chunk_id_differs_from_blake3_and_depends_on_the_key() -> None:
    plain_id = blake3.blake3(b"a well-known file everyone has").digest()
    one, two = MASTER.subkey("chunk-id"), MasterKey.generate().subkey("chunk-id")
    keyed = keys.chunk_id_keyed(one, plain_id)
    assert len(keyed) == 32
    assert keyed != plain_id and keyed != blake3.blake3(plain_id).digest()
    assert keyed != keys.chunk_id_keyed(two, plain_id)
    assert keyed == VolumeKeys(MASTER).keyed_chunk_id(plain_id)
    assert keyed != VolumeKeys(MasterKey.generate()).keyed_chunk_id(plain_id)
    with pytest.raises(ValueError, match="chunk-id"):
        keys.chunk_id_keyed(MASTER.subkey("pack"), plain_id)


def test_secrets_never_show_in_repr_str_or_pickle() -> None:
    raw = os.urandom(32)
    master = MasterKey(raw)
    key_object = keys.wrap(master, b"hunter2", weak())
    sub = master.subkey("pack")
    texts = [repr(master), str(master), repr(sub), str(sub), repr(key_object), str(key_object), repr(key_object.kdf)]
    for text in texts:
        for secret in (raw, sub._key, key_object.sealed, key_object.kdf.salt):
            assert secret.hex() not in text.lower()
            assert repr(secret) not in text
        assert "hunter2" not in text
    assert master.id in repr(master) and "pack" in repr(sub)
    for obj in (master, sub):
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    with pytest.raises(TypeError):
        hash(master)


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MasterKey(b"short")


def test_volume_keys_seal_per_purpose_and_name() -> None:
    vk = VolumeKeys(MASTER)
    blob = vk.seal("catalog", "catalog/1-base", 1, b"rows")
    assert vk.unseal("catalog", "catalog/1-base", 1, blob) == b"rows"
    for purpose, name, fmt in [("pointer", "catalog/1-base", 1), ("catalog", "catalog/2-base", 1),
                               ("catalog", "catalog/1-base", 2)]:
        with pytest.raises(CorruptChunk, match="fails authentication"):
            vk.unseal(purpose, name, fmt, blob)  # type: ignore[arg-type]
    with pytest.raises(CorruptChunk):
        VolumeKeys(MasterKey.generate()).unseal("catalog", "catalog/1-base", 1, blob)
    assert MASTER.id in repr(vk) and vk.key_id == MASTER.id
    with pytest.raises(TypeError):
        pickle.dumps(vk)
