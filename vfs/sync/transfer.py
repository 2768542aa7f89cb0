"""Moving whole pack files between the store and the remote, verified (blocking: run in threads)."""

from __future__ import annotations

from pathlib import Path

from vfs.backend import Backend
from vfs.errors import CorruptChunk, StoreError
from vfs.fsutil import PRIVATE_FILE, private_dir, replace_file
from vfs.store import codec
from vfs.store.packs import PACK_HEADER_SEALED, PARTIAL_SUFFIX
from vfs.sync.layout import pack_key


def upload_pack(backend: Backend, path: Path, *, check_first: bool = True, sealed: bool = False,
                ) -> tuple[str, int, bool]:
    """Put the sealed pack at `path` unless the remote already holds it whole.

    Returns (key, size, whether it was sent). With `check_first`, a HEAD first, so that a pack a
    process uploaded but died before recording is not sent twice; the uploader asks for it only for
    packs an earlier attempt may have sent (it saves a round trip per pack otherwise).
    """
    data = path.read_bytes()
    if sealed and not data.startswith(PACK_HEADER_SEALED):
        # A store being encrypted in place ('vfs remote set --encrypt' interrupted) still has plain packs.
        raise StoreError(f"pack {path} of an encrypted store is not sealed: nothing plain is uploaded; run"
                         " 'vfs remote set --encrypt' again to finish sealing the store's packs")
    key = pack_key(codec.chunk_id(data))
    if check_first and backend.head(key) == len(data):
        return key, len(data), False
    backend.put(key, data)
    return key, len(data), True


def download_pack(backend: Backend, key: str, size: int, dest: Path) -> int:
    """Get the pack object `key` into `dest` (atomically), after checking it against its name.

    Raises:
        CorruptChunk: the object's bytes do not hash to its key (or have the wrong size); nothing is
            written, and the message names the key.
    """
    data = backend.get(key)
    if len(data) != size or pack_key(codec.chunk_id(data)) != key:
        raise CorruptChunk(
            f"remote object {key} ({backend.url}) is corrupt: its {len(data)} bytes do not match its BLAKE3 name"
            f" (expected {size} bytes); not used"
        )
    private_dir(dest.parent, parents=True)
    replace_file(dest, data)
    # The whole pack makes its partial copy (entries fetched one by one, vfs.store.partial) moot.
    dest.with_suffix(PARTIAL_SUFFIX).unlink(missing_ok=True)
    return len(data)


def upload_marked(backend: Backend, path: Path, marker: Path, sealed: bool = False) -> tuple[str, int, bool]:
    """Upload a pack, HEADing first only if an earlier attempt (its marker) may have sent it (`sealed`:
    see `upload_pack`)."""
    tried = marker.exists()
    if not tried:
        private_dir(marker.parent, parents=True)
        marker.touch(mode=PRIVATE_FILE)  # before the PUT: a process killed during it leaves the marker behind
    return upload_pack(backend, path, check_first=tried, sealed=sealed)
