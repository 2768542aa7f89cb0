"""Chunk ids (BLAKE3) and chunk compression (zstd): the only importer of blake3 and zstandard."""

from __future__ import annotations

import threading
from typing import Final

import blake3
import zstandard

from vfs.errors import CorruptChunk
from vfs.types import ChunkId

RAW: Final = 0
ZSTD: Final = 1

_local = threading.local()


def chunk_id(data: bytes | memoryview) -> ChunkId:
    return ChunkId(blake3.blake3(data).digest())


def file_hasher() -> blake3.blake3:
    """An incremental BLAKE3 for whole-file content hashes (same function as chunk ids)."""
    return blake3.blake3()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # One compressor per thread and level: ZstdCompressor is not thread-safe.
    cache: dict[int, zstandard.ZstdCompressor] = getattr(_local, "compressors", None) or {}
    _local.compressors = cache
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level)
    return cache[level]


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "decompressor", None)
    if d is None:
        d = _local.decompressor = zstandard.ZstdDecompressor()
    return d


def encode(data: bytes | memoryview, level: int) -> tuple[int, bytes | memoryview]:
    """Compress `data`; keep it raw when compression would not save at least 1/32 of it."""
    packed = _compressor(level).compress(data)
    if len(packed) + (len(data) >> 5) < len(data):
        return ZSTD, packed
    return RAW, data


def decode(codec: int, stored: bytes, plain_len: int, expected: ChunkId, where: str) -> bytes:
    """Undo `encode` and check the result against its chunk id; raise CorruptChunk naming `where`."""
    plain = decode_unchecked(codec, stored, plain_len, f"chunk {expected.hex()} in {where}")
    if len(plain) != plain_len or chunk_id(plain) != expected:
        raise CorruptChunk(f"chunk {expected.hex()} in {where}: content does not match its BLAKE3 id")
    return plain


def decode_unchecked(codec: int, stored: bytes, plain_len: int, where: str) -> bytes:
    """Undo `encode` without checking the result (a scan that must find out the chunk id)."""
    try:
        if codec == ZSTD:
            plain: bytes = _decompressor().decompress(stored, max_output_size=plain_len)
            return plain
        if codec == RAW:
            return stored
    except zstandard.ZstdError as e:
        raise CorruptChunk(f"{where}: cannot decompress ({e})") from None
    raise CorruptChunk(f"{where}: unknown codec {codec}")


def compress(data: bytes | memoryview, level: int = 3) -> bytes:
    """zstd of `data` (for whole objects such as catalog checkpoints, not chunks)."""
    return _compressor(level).compress(data)


def decompress(data: bytes, where: str) -> bytes:
    """Undo `compress`; CorruptChunk naming `where` if the bytes are not a zstd frame."""
    try:
        out: bytes = _decompressor().decompressobj().decompress(data)
        return out
    except zstandard.ZstdError as e:
        raise CorruptChunk(f"{where}: cannot decompress ({e})") from None
