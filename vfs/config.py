"""Tunables with their defaults, in one place."""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class StoreConfig:
    """How data is cut, compressed and packed. Written into a new store; read back from it after."""

    # FastCDC: the real mean chunk is about avg + min (cut-point skipping), ~640 KiB here.
    chunk_min: int = 128 * KiB
    chunk_avg: int = 512 * KiB
    chunk_max: int = 2 * MiB
    zstd_level: int = 3
    # A pack is sealed (becomes immutable, ready to upload) once it grows past this.
    pack_target: int = 16 * MiB
