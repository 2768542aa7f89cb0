"""Chunk ids and chunk compression: vfs.store.codec."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import blake3
import pytest

from vfs.errors import CorruptChunk
from vfs.store import codec
from vfs.types import ChunkId

TEXT = b"".join(b"line %d of a very ordinary text file\n" % i for i in range(4000))


def test_chunk_id_is_blake3_of_plain_bytes() -> None:
    data = os.urandom(10_000)
    assert codec.chunk_id(data) == blake3.blake3(data).digest()
    assert codec.chunk_id(memoryview(data)) == codec.chunk_id(data)
    assert len(codec.chunk_id(b"")) == 32


def test_file_hasher_is_the_same_function() -> None:
    h = codec.file_hasher()
    h.update(TEXT[:100])
    h.update(TEXT[100:])
    assert h.digest() == codec.chunk_id(TEXT)


def test_compressible_data_is_stored_zstd() -> None:
    kind, stored = codec.encode(TEXT, 3)
    assert kind == codec.ZSTD
    assert len(stored) < len(TEXT) // 4
    assert codec.decode(kind, bytes(stored), len(TEXT), codec.chunk_id(TEXT), "test") == TEXT


def test_incompressible_data_is_stored_raw() -> None:
    data = os.urandom(200_000)
    kind, stored = codec.encode(data, 3)
    assert kind == codec.RAW
    assert bytes(stored) == data
    assert codec.decode(kind, bytes(stored), len(data), codec.chunk_id(data), "test") == data


def test_barely_compressible_data_is_stored_raw() -> None:
    # Saving less than 1/32 is not worth a decompression on every read.
    data = os.urandom(100_000) + bytes(1000)
    kind, _ = codec.encode(data, 3)
    assert kind == codec.RAW


@pytest.mark.parametrize("kind", [codec.RAW, codec.ZSTD])
def test_decode_checks_the_id(kind: int) -> None:
    data = TEXT if kind == codec.ZSTD else os.urandom(5000)
    got_kind, stored = codec.encode(data, 3)
    assert got_kind == kind
    wrong = ChunkId(bytes(32))
    with pytest.raises(CorruptChunk, match=f"chunk {wrong.hex()} in pack 7: content does not match"):
        codec.decode(kind, bytes(stored), len(data), wrong, "pack 7")


def test_decode_checks_the_length() -> None:
    data = os.urandom(5000)
    with pytest.raises(CorruptChunk):
        codec.decode(codec.RAW, data, len(data) + 1, codec.chunk_id(data), "pack 1")


def test_a_flipped_byte_of_a_compressed_chunk_never_returns_wrong_data() -> None:
    data = TEXT[:20_000]
    cid = codec.chunk_id(data)
    kind, stored = codec.encode(data, 3)
    assert kind == codec.ZSTD
    caught = 0
    for i in range(len(stored)):
        damaged = bytearray(stored)
        damaged[i] ^= 0x40
        try:
            plain = codec.decode(kind, bytes(damaged), len(data), cid, "pack 1")
        except CorruptChunk as e:
            assert cid.hex() in str(e) and "pack 1" in str(e)
            caught += 1
        else:
            # A few bits of a zstd frame (unused table entries) do not change the output at all.
            assert plain == data, f"flip at {i} decoded to different bytes"
    assert caught > len(stored) * 0.9


def test_unknown_codec_is_corrupt() -> None:
    with pytest.raises(CorruptChunk, match="unknown codec 9"):
        codec.decode(9, b"x", 1, codec.chunk_id(b"x"), "pack 1")


def test_encode_is_thread_safe() -> None:
    pieces = [TEXT[i * 1000 :] + os.urandom(i) for i in range(64)]
    with ThreadPoolExecutor(4) as pool:
        encoded = list(pool.map(lambda p: codec.encode(p, 3), pieces))
        decoded = list(pool.map(
            lambda pe: codec.decode(pe[1][0], bytes(pe[1][1]), len(pe[0]), codec.chunk_id(pe[0]), "t"),
            zip(pieces, encoded, strict=True),
        ))
    assert decoded == pieces
