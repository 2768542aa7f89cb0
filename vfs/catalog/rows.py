"""The catalog's row types: the values its methods return (versions, directory entries, snapshots, commits).

`Attr`, an inode's attributes, lives in `vfs.types` (fs/ and fuse/ hand it around without importing the
catalog); it is re-exported from `vfs.catalog`. The chunk list of a version is stored as one blob (see
schema: versions.chunks); `encode_chunk_list`/`decode_chunk_list` are its one encoding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from vfs.types import ChunkId, CommitNo, InodeNo, VersionNo

_CHUNK_REF = struct.Struct("<32sI")


def encode_chunk_list(chunks: Iterable[tuple[ChunkId, int]]) -> bytes:
    return b"".join(_CHUNK_REF.pack(cid, n) for cid, n in chunks)


def decode_chunk_list(blob: bytes) -> list[tuple[ChunkId, int]]:
    return [(ChunkId(cid), n) for cid, n in _CHUNK_REF.iter_unpack(blob)]


@dataclass(frozen=True, slots=True)
class Version:
    ino: InodeNo
    vno: VersionNo
    commit_no: CommitNo
    time_ns: int  # when it was committed
    size: int
    hash: bytes
    chunks: list[tuple[ChunkId, int]]
    mtime_ns: int
    origin: str
    # The writer's st_mode, owner and group in the state its commit left: what a view of this version
    # shows (`f@3`, `f@/3`), never the file's current ones, which may be looser (a secret written 0600,
    # chmod 644 after it was replaced). A chmod while the version was current does not change them.
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class DirEntry:
    cookie: int  # pass back as `after` to continue a listing
    name: bytes
    ino: InodeNo


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str
    commit_no: CommitNo
    time_ns: int


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """A version row without its chunk list (for retention)."""

    id: int  # versions.id
    ino: InodeNo
    vno: VersionNo
    commit_no: CommitNo
    time_ns: int  # when it was committed
    size: int


@dataclass(frozen=True, slots=True)
class Commit:
    no: CommitNo
    time_ns: int


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One name of the tree at some commit, with what it pointed to then."""

    path: bytes  # relative to the root, components joined by b"/"
    ino: InodeNo
    mode: int
    size: int
    hash: bytes | None  # content hash of a regular file's version; None when empty or not a file
    target: bytes | None  # symlink target
