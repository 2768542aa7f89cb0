"""A store directory as a whole: vfs.repository (opening, damage, locking, dedup, crash safety)."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vfs.catalog import Version
from vfs.catalog.catalog import CATALOG_FILE
from vfs.catalog.schema import SCHEMA_VERSION
from vfs.config import KiB, MiB, StoreConfig
from vfs.errors import CorruptChunk, Exists, MissingChunk, NotAStore, SchemaTooNew, StoreError, StoreLocked
from vfs.repository import Repository
from vfs.store.packs import ENTRY, list_packs, pack_path, scan_pack
from vfs.types import ROOT_INO, InodeNo

SMALL = StoreConfig(chunk_min=16 * KiB, chunk_avg=64 * KiB, chunk_max=256 * KiB, pack_target=MiB)
FILE = stat.S_IFREG | 0o644
TESTS = Path(__file__).parent


def new_file(repo: Repository, name: bytes) -> InodeNo:
    return repo.catalog.create(ROOT_INO, name, FILE, os.getuid(), os.getgid()).ino


def read_all(repo: Repository, v: Version) -> bytes:
    return b"".join(repo.iter_content(v))


def _sql(path: Path, statement: str, args: tuple[object, ...] = ()) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute(statement, args)
    db.close()


# -- reading and writing ------------------------------------------------------------------------------
def test_commit_and_read_back(repo: Repository, tmp_path: Path) -> None:
    ino = new_file(repo, b"f")
    # Seeded: random bytes cut into as few as 2 chunks now and then (each may reach chunk_max).
    data = random.Random(3).randbytes(3 * MiB) + b"text " * 300_000
    staging = tmp_path / "staging"
    staging.write_bytes(data)
    v = repo.commit_file(ino, staging, mtime_ns=42)
    assert (v.vno, v.size, v.mtime_ns) == (1, len(data), 42)
    assert len(v.chunks) > 3
    assert read_all(repo, v) == data
    assert repo.catalog.version_at(ino) == v
    rnd = random.Random(5)
    for _ in range(200):
        off = rnd.randrange(len(data) + 10)
        size = rnd.choice([0, 1, rnd.randrange(1, 5000), rnd.randrange(1, 3 * MiB)])
        assert repo.read(v, off, size) == data[off : off + size]
    empty = repo.commit_bytes(ino, b"")
    assert empty.vno == 2 and read_all(repo, empty) == b"" and repo.read(empty, 0, 10) == b""
    assert repo.catalog.check() == []


def test_sequential_reads_are_decoded_ahead_and_then_served_from_memory(tmp_path: Path) -> None:
    v, data = _store_with_one_version(tmp_path)
    with Repository.open(tmp_path) as repo:
        assert len(v.chunks) > 10
        assert repo.read_ready(v, 0, MiB) is None  # several chunks, none decoded yet: for a thread
        step, offset = 128 * KiB, 0
        assert repo.read(v, offset, step) == data[:step]
        # Every later step is served from memory, never by a read that waits: each one the read-ahead
        # decoded (in the store's threads) moves it further. (How many are ready without any wait depends
        # on the machine's load: not asserted.)
        for offset in range(step, len(data), step):
            deadline = time.monotonic() + 10
            while (got := repo.read_ready(v, offset, step)) is None:
                assert time.monotonic() < deadline, f"nothing decoded ahead at {offset}"
                time.sleep(0.01)
            assert got == data[offset : offset + step]


def test_a_corrupt_chunk_met_by_read_ahead_is_reported_by_the_read(tmp_path: Path) -> None:
    v, data = _store_with_one_version(tmp_path)
    with Repository.open(tmp_path) as repo:
        loc = repo.catalog.locate(v.chunks[2][0])
        start = sum(n for _, n in v.chunks[:2])
    path = pack_path(tmp_path / "packs", loc.pack)
    raw = bytearray(path.read_bytes())
    raw[loc.offset + ENTRY.size + 10] ^= 0xFF
    path.write_bytes(raw)
    with Repository.open(tmp_path) as repo:
        assert repo.read(v, 0, 1000) == data[:1000]  # starts the read-ahead over the damaged chunk
        time.sleep(0.5)
        try:  # damage is never cached, nor served by a small inline read
            assert repo.read_ready(v, start, 1000) is None
        except CorruptChunk:
            pass
        with pytest.raises(CorruptChunk, match=loc.chunk_id.hex()):
            repo.read(v, start, 1000)


def test_a_small_file_reads_inline_from_a_local_pack_only(tmp_path: Path) -> None:
    with Repository.init(tmp_path, SMALL) as repo:
        v = repo.commit_bytes(new_file(repo, b"small"), b"a small file\n")
        assert repo.read_ready(v, 2, 5) == b"small"
        pack = pack_path(tmp_path / "packs", repo.catalog.locate(v.chunks[0][0]).pack)
    os.rename(pack, tmp_path / "elsewhere")  # as in a lazy clone: the pack is on the remote
    with Repository.open(tmp_path) as repo:
        assert repo.read_ready(v, 0, 100) is None  # a fetch is work for a thread
        with pytest.raises(MissingChunk):
            repo.read(v, 0, 100)


def test_live_attributes_are_cached_for_the_lock_holder_and_never_stale(tmp_path: Path) -> None:
    with Repository.init(tmp_path, SMALL) as repo:
        cat = repo.catalog
        assert cat.cache_live_attrs
        ino = new_file(repo, b"f")
        assert cat.attr(ino) is cat.attr(ino)  # the second one came from the cache
        cat.set_attr(ino, mode=0o600)
        assert stat.S_IMODE(cat.attr(ino).mode) == 0o600
        cat.link(ino, ROOT_INO, b"g")
        assert cat.attr(ino).nlink == 2
        repo.commit_bytes(ino, b"content")
        assert (cat.attr(ino).size, cat.attr(ino).vno) == (7, 1)
        cat.unlink(ROOT_INO, b"f")
        assert cat.attr(ino).nlink == 1
        with pytest.raises(Exists):
            cat.link(ino, ROOT_INO, b"g")  # a failed change leaves the cache right
        assert cat.attr(ino).nlink == 1
    with Repository.open(tmp_path, lock=False) as reader:
        assert not reader.catalog.cache_live_attrs  # another process may be writing


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(StoreError, match="not an empty directory"):
        Repository.init(tmp_path)


def test_a_store_reopens_with_its_config(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "s", SMALL) as repo:
        ino = new_file(repo, b"f")
        v = repo.commit_bytes(ino, os.urandom(MiB))
        store_id = repo.store_id
    with Repository.open(tmp_path / "s") as repo:
        assert repo.config == SMALL and repo.store_id == store_id
        assert read_all(repo, v) == read_all(repo, repo.catalog.version(ino, 1))  # type: ignore[arg-type]
        assert repo.commit_bytes(ino, b"more").vno == 2


# -- bad input ------------------------------------------------------------------------------------
def test_open_something_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for path in (tmp_path, tmp_path / "missing", tmp_path / "notes.txt"):
        with pytest.raises(NotAStore) as e:
            Repository.open(path)
        assert str(path) in str(e.value) and "not a vfs store" in str(e.value)
        assert "vfs init" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing created


def test_open_a_sqlite_file_that_is_not_a_catalog(tmp_path: Path) -> None:
    _sql(tmp_path / CATALOG_FILE, "CREATE TABLE other (x)")
    with pytest.raises(NotAStore, match="not a vfs catalog"):
        Repository.open(tmp_path)
    (tmp_path / CATALOG_FILE).write_bytes(b"this is no database " * 100)
    with pytest.raises(StoreError, match="cannot be read"):
        Repository.open(tmp_path)


def test_open_a_store_from_a_newer_vfs(tmp_path: Path) -> None:
    Repository.init(tmp_path).close()
    catalog = tmp_path / CATALOG_FILE
    _sql(catalog, "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    before = catalog.read_bytes(), catalog.stat().st_mtime_ns
    time.sleep(0.01)
    with pytest.raises(SchemaTooNew) as e:
        Repository.open(tmp_path)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(e.value) and "upgrade vfs" in str(e.value)
    assert (catalog.read_bytes(), catalog.stat().st_mtime_ns) == before
    # The failed open let go of the lock and the catalog.
    _sql(catalog, "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
    Repository.open(tmp_path).close()


def _store_with_one_version(path: Path) -> tuple[Version, bytes]:
    data = os.urandom(2 * MiB)
    with Repository.init(path, SMALL) as repo:
        v = repo.commit_bytes(new_file(repo, b"f"), data)
    return v, data


def test_a_truncated_pack_is_a_corrupt_chunk(tmp_path: Path) -> None:
    v, data = _store_with_one_version(tmp_path)
    with Repository.open(tmp_path) as repo:
        loc = repo.catalog.locate(v.chunks[-1][0])  # the pack that holds the last chunk, never empty
    last = pack_path(tmp_path / "packs", loc.pack)
    os.truncate(last, loc.offset + 10)
    with Repository.open(tmp_path) as repo:
        with pytest.raises(CorruptChunk, match=r"chunk [0-9a-f]{64} in pack \d+ .*truncated"):
            read_all(repo, v)
        assert repo.read(v, 0, 1000) == data[:1000]  # the intact part still reads


def test_a_flipped_byte_in_a_pack_is_a_corrupt_chunk(tmp_path: Path) -> None:
    v, _ = _store_with_one_version(tmp_path)
    with Repository.open(tmp_path) as repo:
        loc = repo.catalog.locate(v.chunks[2][0])
    path = pack_path(tmp_path / "packs", loc.pack)
    raw = bytearray(path.read_bytes())
    raw[loc.offset + 100] ^= 0xFF
    path.write_bytes(raw)
    with Repository.open(tmp_path) as repo, pytest.raises(CorruptChunk) as e:
        read_all(repo, v)
    assert loc.chunk_id.hex() in str(e.value) and f"pack {loc.pack}" in str(e.value)


def test_a_chunk_row_that_is_gone_is_a_missing_chunk(tmp_path: Path) -> None:
    v, _ = _store_with_one_version(tmp_path)
    victim = v.chunks[1][0]
    _sql(tmp_path / CATALOG_FILE, "DELETE FROM chunks WHERE id = ?", (victim,))
    with Repository.open(tmp_path) as repo:
        with pytest.raises(MissingChunk, match=victim.hex()):
            read_all(repo, v)
        assert any(victim.hex() in p for p in repo.catalog.check())


def test_a_pack_file_that_is_gone_is_a_missing_chunk(tmp_path: Path) -> None:
    v, _ = _store_with_one_version(tmp_path)
    with Repository.open(tmp_path) as repo:
        loc = repo.catalog.locate(v.chunks[0][0])
    pack_path(tmp_path / "packs", loc.pack).unlink()
    with Repository.open(tmp_path) as repo, pytest.raises(MissingChunk) as e:
        read_all(repo, v)
    assert loc.chunk_id.hex() in str(e.value) and f"pack {loc.pack}" in str(e.value)


def test_a_chunk_row_pointing_to_the_wrong_place_is_a_corrupt_chunk(tmp_path: Path) -> None:
    v, _ = _store_with_one_version(tmp_path)
    victim = v.chunks[1][0]
    _sql(tmp_path / CATALOG_FILE, "UPDATE chunks SET offset = offset + 7 WHERE id = ?", (victim,))
    with Repository.open(tmp_path) as repo, pytest.raises(CorruptChunk, match=victim.hex()):
        read_all(repo, v)


# -- the store lock ---------------------------------------------------------------------------------
def test_a_second_open_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = Repository.init(tmp_path)
    with pytest.raises(StoreLocked, match=f"in use by pid {os.getpid()}"):
        Repository.open(tmp_path)
    # Read-only access without the lock is allowed, and writes nothing.
    packs_before = list_packs(tmp_path / "packs")
    with Repository.open(tmp_path, lock=False) as reader:
        assert reader.catalog.readdir(ROOT_INO) == []
    assert list_packs(tmp_path / "packs") == packs_before
    first.close()
    Repository.open(tmp_path).close()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    Repository.init(tmp_path).close()
    code = "import sys, time; from vfs.repository import Repository; r = Repository.open(sys.argv[1]);" \
           " print('open', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "open\n"
        with pytest.raises(StoreLocked, match=f"in use by pid {proc.pid}"):
            Repository.open(tmp_path)
    finally:
        proc.kill()
        proc.communicate()
    Repository.open(tmp_path).close()


# -- dedup a user can see -------------------------------------------------------------------------------
def _mixed_data(size: int, seed: int) -> bytes:
    """Random stretches alternating with text stretches (cut from a text corpus), `size` bytes."""
    rnd = random.Random(seed)
    words = [b"%s%d" % (w, rnd.randrange(100)) for w in
             b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()]
    corpus = b" ".join(rnd.choices(words, k=800_000))  # ~4.5 MiB of text
    parts = []
    total = 0
    while total < size:
        n = rnd.randrange(64 * KiB, 4 * MiB)
        if rnd.random() < 0.5:
            parts.append(os.urandom(n))
        else:
            start = rnd.randrange(len(corpus) - n)
            parts.append(corpus[start : start + n])
        total += n
    return b"".join(parts)[:size]


def _stored_bytes(repo: Repository) -> int:
    return sum(pack_path(repo.path / "packs", n).stat().st_size for n in list_packs(repo.path / "packs"))


def _same_content(repo: Repository, v: Version, expected: bytes) -> bool:
    view = memoryview(expected)
    pos = 0
    for piece in repo.iter_content(v):
        if view[pos : pos + len(piece)] != piece:
            return False
        pos += len(piece)
    return pos == len(expected)


@pytest.mark.slow
def test_small_edits_of_a_big_file_store_only_a_few_chunks(repo: Repository, tmp_path: Path) -> None:
    size = 256 * MiB
    original = _mixed_data(size, seed=1)
    staging = tmp_path / "big"
    staging.write_bytes(original)
    ino = new_file(repo, b"big")
    steps: list[tuple[str, bytes]] = [("original", original)]
    v1 = repo.commit_file(ino, staging)
    versions = [v1]
    report = [f"original: {len(v1.chunks)} chunks, {_stored_bytes(repo) / MiB:.1f} MiB stored for "
              f"{size / MiB:.0f} MiB"]

    # One byte changed in the middle.
    changed = bytearray(original)
    changed[size // 2] ^= 0xFF
    with open(staging, "r+b") as f:
        f.seek(size // 2)
        f.write(bytes([changed[size // 2]]))
    steps.append(("1 byte changed in the middle", bytes(changed)))
    # 100 bytes inserted at the start.
    inserted = os.urandom(100) + bytes(changed)
    steps.append(("100 bytes inserted at the start", inserted))

    for label, content in steps[1:]:
        if label.startswith("100 bytes"):
            staging.write_bytes(content)
        chunks_before = len(repo.catalog.chunk_locations())
        bytes_before = _stored_bytes(repo)
        v = repo.commit_file(ino, staging)
        versions.append(v)
        new_chunks = len(repo.catalog.chunk_locations()) - chunks_before
        added = _stored_bytes(repo) - bytes_before
        report.append(f"{label}: +{new_chunks} chunks, +{added:,} bytes stored")
        assert new_chunks <= 3, report[-1]
        assert added <= 6 * MiB, report[-1]
    print("\ndedup of a 256 MiB file:\n  " + "\n  ".join(report))

    assert [v.vno for v in versions] == [1, 2, 3]
    for v, (label, content) in zip(versions, steps, strict=True):
        assert v.size == len(content)
        assert _same_content(repo, v, content), f"version {v.vno} ({label}) reads back wrong"
    assert repo.catalog.check() == []


# -- crash safety -----------------------------------------------------------------------------------------
def _verify(repo: Repository, reported: dict[tuple[int, int], str], checked: set[tuple[int, int]],
            inos: list[InodeNo], everything: bool) -> None:
    assert repo.catalog.check() == []
    # Every version the catalog knows (reported or committed just before a kill) reads back whole.
    for ino in inos:
        for v in repo.catalog.versions(ino):
            key = (v.ino, v.vno)
            if key in checked and not everything:
                continue
            data = read_all(repo, v)
            assert len(data) == v.size
            if key in reported:
                assert hashlib.sha256(data).hexdigest() == reported[key], f"version {key} has other content"
            checked.add(key)
    for key in reported:
        assert repo.catalog.version(InodeNo(key[0]), key[1]) is not None, f"reported version {key} is gone"
    # Every committed chunk is reachable by scanning its pack (what recovery and fsck rely on).
    root = repo.path / "packs"
    scanned = {loc for n in list_packs(root) for loc in scan_pack(pack_path(root, n))}
    missing = [loc for loc in repo.catalog.chunk_locations() if loc not in scanned]
    assert missing == [], f"{len(missing)} committed chunks lie beyond a torn pack tail"


@pytest.mark.slow
def test_killed_writers_never_damage_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Repository.init(store, SMALL) as repo:
        inos = [new_file(repo, b"file%d" % i) for i in range(4)]
    rnd = random.Random()
    seed = rnd.randrange(1 << 30)
    print(f"\ncrash test seed {seed}")
    rnd.seed(seed)
    reported: dict[tuple[int, int], str] = {}
    checked: set[tuple[int, int]] = set()
    kills = torn = 0
    deadline = time.monotonic() + 40
    while kills < 25 or (len(reported) < 50 and time.monotonic() < deadline):
        proc = subprocess.Popen(
            [sys.executable, str(TESTS / "crash_writer.py"), str(store), str(rnd.randrange(1 << 30)),
             ",".join(map(str, inos))],
            stdout=subprocess.PIPE, text=True,
        )
        time.sleep(rnd.uniform(0.05, 0.9))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"writer ended on its own: {out[-2000:]}"
        kills += 1
        for line in out.splitlines(keepends=True):
            if line.endswith("\n") and line != "open\n":
                ino, vno, sha = line.split()
                key = (int(ino), int(vno))
                assert key not in reported, f"version {key} was committed twice"
                reported[key] = sha
        with Repository.open(store) as repo:  # opens cleanly: the killed writer's lock is gone
            _verify(repo, reported, checked, inos, everything=False)
        existing = list_packs(store / "packs")
        if existing and rnd.random() < 0.3:
            # A kill between an entry's header and its bytes is too rare to wait for: make one.
            last = pack_path(store / "packs", existing[-1])
            with open(last, "ab") as f:
                f.write(ENTRY.pack(os.urandom(32), 0, 200_000, 200_000) + os.urandom(rnd.randrange(0, 5000)))
            torn += 1
    with Repository.open(store) as repo:
        _verify(repo, reported, checked, inos, everything=True)
        # The store still takes writes after all that.
        v = repo.commit_bytes(inos[0], b"after the storm")
        assert read_all(repo, v) == b"after the storm"
    print(f"{kills} kills ({torn} torn pack tails added), {len(reported)} versions reported committed,"
          f" {len(checked)} versions verified")
    assert len(reported) >= 20
