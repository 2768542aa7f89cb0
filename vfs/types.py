"""Typed ids used across layers."""

from __future__ import annotations

from typing import NewType

ChunkId = NewType("ChunkId", bytes)  # BLAKE3-256 of the chunk's plain bytes (32 bytes)
InodeNo = NewType("InodeNo", int)  # 1 is the root directory
VersionNo = NewType("VersionNo", int)  # per-file content version, 1, 2, 3 ... never reused
CommitNo = NewType("CommitNo", int)  # catalog transaction number, strictly increasing
PackNo = NewType("PackNo", int)  # local pack file number

ROOT_INO = InodeNo(1)
