"""Checking pack entries against the locations that point to them: the store's one verifier.

An entry is *intact* for a location when the pack holds it whole, its header says what the location
says (chunk id, codec, stored and plain lengths), and its stored bytes decode to plain bytes whose
BLAKE3 is the chunk id. fsck, its repair, gc's repack and the remote repair all ask `check_entry`,
over a pack file (`PackFile`) or over a pack's bytes in memory (`verify_pack_bytes`); the problem
kinds and messages are the ones fsck reports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vfs.errors import CorruptChunk
from vfs.store import codec
from vfs.store.keys import VolumeKeys
from vfs.store.packs import PACK_MAGIC, ChunkLocation, header_matches, stored_bytes

ProblemKind = Literal["missing-pack", "truncated", "header-mismatch", "corrupt"]


@dataclass(frozen=True, slots=True)
class EntryProblem:
    """Why an entry is not intact for its location (`kind` is fsck's problem kind)."""

    kind: ProblemKind
    message: str


def check_entry(loc: ChunkLocation, pack_size: int, read: Callable[[int, int], bytes], *,
                keys: VolumeKeys | None = None, read_data: bool = True) -> EntryProblem | None:
    """The problem of the entry `loc` points to, or None if it is intact.

    `read(offset, length)` reads the pack's bytes; `pack_size` is its length; `keys` open a sealed entry
    (KeyRequired without them). Without `read_data` only the entry's extent and header are checked (its
    stored bytes are not read).
    """
    where = f"chunk {loc.chunk_id.hex()} in pack {loc.pack} at offset {loc.offset}"
    if loc.offset + loc.entry_size > pack_size:
        return EntryProblem("truncated", f"{where}: the pack ends at {pack_size}, before the entry does")
    if not header_matches(read(loc.offset, loc.header_size), loc, keys):
        return EntryProblem("header-mismatch", f"{where}: the entry header does not match the catalog")
    if not read_data:
        return None
    body = read(loc.offset + loc.header_size, loc.stored_len)
    try:
        stored = stored_bytes(loc, body, keys, f"pack {loc.pack}")
        codec.decode(loc.stored_codec, stored, loc.plain_len, loc.chunk_id, f"pack {loc.pack}")
    except CorruptChunk as e:
        return EntryProblem("corrupt", str(e))
    return None


def verify_pack_bytes(data: bytes, locations: Iterable[ChunkLocation], keys: VolumeKeys | None = None) -> bool:
    """Whether every entry of `locations` is intact in `data`, a whole pack's bytes (one downloaded or
    about to be uploaded)."""
    return all(check_entry(loc, len(data), lambda offset, n: data[offset : offset + n], keys=keys) is None
               for loc in locations)


class PackFile:
    """One pack file opened read-only to check its header and entries (fsck), with a tally of the
    stored bytes read back. A context manager; opening raises FileNotFoundError if it is absent."""

    def __init__(self, path: Path, keys: VolumeKeys | None = None) -> None:
        self.path = path
        self._keys = keys
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.fstat(self._fd).st_size
        self.chunks_read = 0
        self.bytes_read = 0

    def has_header(self) -> bool:
        """Whether the file starts with the pack magic (scans and appends depend on it; reads do not)."""
        return os.pread(self._fd, len(PACK_MAGIC), 0) == PACK_MAGIC

    def verify(self, loc: ChunkLocation, *, read_data: bool = True) -> EntryProblem | None:
        """`check_entry` of `loc` in this file."""

        def read(offset: int, length: int) -> bytes:
            data = os.pread(self._fd, length, offset)
            if offset != loc.offset:  # the stored bytes, not the header
                self.chunks_read += 1
                self.bytes_read += len(data)
            return data

        return check_entry(loc, self.size, read, keys=self._keys, read_data=read_data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PackFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
