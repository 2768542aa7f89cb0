"""An encrypted volume's packs (format 2: each entry sealed) and store: vfs.store.packs, chunkstore, keyring."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from tests.test_repository import new_file
from vfs.config import KiB, StoreConfig
from vfs.errors import CorruptChunk, KeyRequired, WrongPassphrase
from vfs.repository import Repository
from vfs.store import ChunkStore
from vfs.store.keyring import KEYS_DIR, key_objects
from vfs.store.keys import KdfParams, VolumeKeys
from vfs.store.packs import PACK_HEADER_SEALED, SEALED, list_packs, pack_path, scan_pack
from vfs.store.verify import verify_pack_bytes
from vfs.types import ChunkId

SMALL = StoreConfig(chunk_min=4 * KiB, chunk_avg=16 * KiB, chunk_max=64 * KiB, pack_target=256 * KiB)
WEAK = KdfParams(t=1, m=64, p=1)  # tests only: the real default costs a quarter of a second
KEYS = VolumeKeys.generate()


class Known(dict[ChunkId, object]):
    def __call__(self, cid: ChunkId) -> bool:
        return cid in self


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[ChunkStore]:
    s = ChunkStore(tmp_path / "packs", SMALL, threads=2, keys=KEYS, encrypted=True)
    yield s
    s.close()


def _marked(n: int) -> bytes:
    """Compressible text with a marker in every few hundred bytes."""
    return b"".join(b"MARKER-%06d the quick brown fox " % i for i in range(n // 32))[:n]


def test_sealed_entries_read_back_and_hide_content_and_plain_ids(sealed: ChunkStore, tmp_path: Path) -> None:
    data = _marked(300_000) + os.urandom(100_000)
    got = sealed.ingest_bytes(data, Known())
    assert len(got.new) > 3 and all(loc.codec & SEALED for loc in got.new)
    assert b"".join(sealed.read_chunks(got.new)) == data
    sealed.seal()
    raw = b"".join(pack_path(tmp_path / "packs", n).read_bytes() for n in list_packs(tmp_path / "packs"))
    assert raw.startswith(PACK_HEADER_SEALED)
    assert b"MARKER" not in raw and b"quick brown" not in raw
    for loc in got.new:
        assert loc.chunk_id not in raw and loc.chunk_id.hex().encode() not in raw
    assert blake3.blake3(data).digest() not in raw


def test_a_scan_recovers_plain_ids_and_skips_damaged_entries(sealed: ChunkStore, tmp_path: Path) -> None:
    got = sealed.ingest_bytes(_marked(200_000), Known())
    sealed.seal()
    first = got.new[0]
    assert scan_pack(pack_path(tmp_path / "packs", first.pack), KEYS)[: len(got.new)] == got.new
    path = pack_path(tmp_path / "packs", first.pack)
    data = bytearray(path.read_bytes())
    data[first.offset + first.header_size + 60] ^= 1
    path.write_bytes(bytes(data))
    assert [loc.chunk_id for loc in scan_pack(path, KEYS)] == [loc.chunk_id for loc in got.new[1:]]
    with pytest.raises(KeyRequired):
        scan_pack(path)


def test_a_flipped_byte_or_a_swapped_entry_fails_authentication(sealed: ChunkStore, tmp_path: Path) -> None:
    got = sealed.ingest_bytes(_marked(200_000), Known())
    a, b = got.new[0], got.new[1]
    sealed.seal()
    path = pack_path(tmp_path / "packs", a.pack)
    data = path.read_bytes()
    assert verify_pack_bytes(data, got.new, KEYS)
    flipped = bytearray(data)
    flipped[a.offset + a.entry_size - 3] ^= 0x40
    assert not verify_pack_bytes(bytes(flipped), [a], KEYS) and verify_pack_bytes(bytes(flipped), [b], KEYS)
    path.write_bytes(bytes(flipped))
    sealed.forget_pack(a.pack)
    with pytest.raises(CorruptChunk, match="fails authentication"):
        sealed.read_chunk(a)
    # b's entry where a's location says: the header names another keyed id.
    moved = type(a)(a.chunk_id, b.pack, b.offset, a.codec, b.stored_len, a.plain_len)
    with pytest.raises(CorruptChunk, match="header does not match"):
        sealed.read_chunk(moved)
    # Another volume's keys open nothing.
    other = ChunkStore(tmp_path / "packs", SMALL, keys=VolumeKeys.generate(), encrypted=True)
    with pytest.raises(CorruptChunk):
        other.read_chunk(b)
    other.close()


def test_the_chunker_is_seeded_per_volume(tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    cuts = []
    for keys in (None, KEYS, VolumeKeys.generate()):
        s = ChunkStore(tmp_path / f"p{len(cuts)}", SMALL, keys=keys, encrypted=keys is not None)
        cuts.append([n for _, n in s.ingest_bytes(data, Known()).chunks])
        s.close()
    assert cuts[0] != cuts[1] != cuts[2] != cuts[0]


def test_an_encrypted_store_opened_without_its_passphrase_reads_its_catalog_only(tmp_path: Path) -> None:
    store = tmp_path / "s"
    with Repository.init(store, SMALL, passphrase=b"correct horse", kdf=WEAK) as repo:
        version = repo.commit_bytes(new_file(repo, b"f"), b"secret " * 1000)
        assert repo.keys is not None
        key_id = repo.keys.key_id
    assert oct((store / KEYS_DIR).stat().st_mode & 0o777) == "0o700"
    assert all(oct((store / KEYS_DIR / k.id).stat().st_mode & 0o777) == "0o600" for k in key_objects(store))
    with Repository.open(store, lock=False) as locked:
        assert locked.encryption == {"key_id": key_id, "cipher": "aes-256-gcm"} and locked.keys is None
        with pytest.raises(KeyRequired):
            locked.read(version, 0, 10)
    with Repository.open(store) as locked, pytest.raises(KeyRequired):
        locked.commit_bytes(version.ino, b"would be plain")
    with pytest.raises(WrongPassphrase):
        Repository.open(store, passphrase=lambda: b"wrong")
    with Repository.open(store, passphrase=lambda: b"correct horse") as repo:
        assert repo.read(version, 0, 14) == b"secret secret "


def test_a_process_that_unlocks_a_volume_dumps_no_core_and_is_not_dumpable(tmp_path: Path) -> None:
    """Keys stay out of core files and away from other processes of the user (ptrace, /proc/PID/mem)."""
    import subprocess
    import sys

    Repository.init(tmp_path / "s", SMALL, passphrase=b"pw", kdf=WEAK).close()
    child = (
        "import ctypes, resource, sys\n"
        "from vfs.repository import Repository\n"
        "libc = ctypes.CDLL(None)\n"
        "before = libc.prctl(3, 0, 0, 0, 0)\n"  # PR_GET_DUMPABLE
        "Repository.open(sys.argv[1], lock=False, passphrase=lambda: b'pw').close()\n"
        "print(before, libc.prctl(3, 0, 0, 0, 0), resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    done = subprocess.run([sys.executable, "-c", child, str(tmp_path / "s")], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split(None, 2) == ["1", "0", "(0, 0)\n"], done.stdout + done.stderr
