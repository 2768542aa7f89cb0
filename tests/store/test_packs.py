"""Pack files: vfs.store.packs."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import open_files_under
from vfs.errors import CorruptChunk, MissingChunk
from vfs.store import codec, packs
from vfs.store.packs import ENTRY, PACK_HEADER, ChunkLocation, PackReader, PackWriter, list_packs, pack_path, scan_pack
from vfs.types import ChunkId


def _append(w: PackWriter, data: bytes) -> ChunkLocation:
    return w.append(codec.chunk_id(data), codec.RAW, data, len(data))


def _pieces(n: int, size: int = 1000) -> list[bytes]:
    return [os.urandom(size + i) for i in range(n)]


def test_append_and_read_back(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 1 << 20)
    pieces = [*_pieces(5), os.urandom(100_000)]  # one above the single-write threshold
    locs = [_append(w, p) for p in pieces]
    w.sync()
    r = PackReader(tmp_path)
    assert [r.read_entry(loc) for loc in locs] == pieces
    assert locs[0].offset == len(PACK_HEADER)
    assert all(b.offset == a.offset + ENTRY.size + a.stored_len for a, b in itertools.pairwise(locs))
    w.close()
    r.close()
    path = pack_path(tmp_path, locs[0].pack)
    assert path == tmp_path / "0000" / "00000001.pack"
    assert path.read_bytes().startswith(b"VFSPACK\0")


def test_packs_rotate_past_the_target(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 10_000)
    locs = [_append(w, p) for p in _pieces(40)]
    w.close()
    numbers = list_packs(tmp_path)
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 4
    for n in numbers[:-1]:  # sealed packs reached the target; none grew more than one entry past it
        size = pack_path(tmp_path, n).stat().st_size
        assert 10_000 <= size < 10_000 + ENTRY.size + 1040
    assert {loc.pack for loc in locs} <= set(numbers)
    r = PackReader(tmp_path)
    for loc in locs:
        assert codec.chunk_id(r.read_entry(loc)) == loc.chunk_id
    r.close()


def test_reopen_continues_the_open_pack_or_starts_a_new_one(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 10_000)
    first = _append(w, b"a" * 100)
    w.close()
    w = PackWriter(tmp_path, 10_000)
    second = _append(w, b"b" * 20_000)  # same pack, which is now past the target
    w.close()
    assert second.pack == first.pack
    assert second.offset == first.offset + ENTRY.size + 100
    w = PackWriter(tmp_path, 10_000)
    third = _append(w, b"c")
    w.close()
    assert third.pack == first.pack + 1


def test_scan_finds_every_entry(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 1 << 20)
    locs = [_append(w, p) for p in _pieces(10)]
    w.close()
    assert scan_pack(pack_path(tmp_path, 1)) == locs


@pytest.mark.parametrize("cut", [1, ENTRY.size - 1, ENTRY.size, ENTRY.size + 500])
def test_scan_stops_at_a_torn_tail(tmp_path: Path, cut: int) -> None:
    w = PackWriter(tmp_path, 1 << 20)
    locs = [_append(w, p) for p in _pieces(4)]
    w.close()
    path = pack_path(tmp_path, 1)
    torn = locs[-1].offset + cut  # inside the last entry's header or its bytes
    os.truncate(path, torn)
    assert scan_pack(path) == locs[:-1]


def test_scan_rejects_a_file_without_header(tmp_path: Path) -> None:
    path = pack_path(tmp_path, 3)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pack at all, no")
    with pytest.raises(CorruptChunk, match=r"pack 3 .* has no pack header"):
        scan_pack(path)


def test_reopen_cuts_a_torn_tail_so_later_entries_stay_scannable(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 1 << 20)
    locs = [_append(w, p) for p in _pieces(3)]
    w.close()
    path = pack_path(tmp_path, 1)
    with open(path, "ab") as f:  # a killed writer left half an entry
        f.write(ENTRY.pack(bytes(32), 0, 5000, 5000) + b"partial")
    w = PackWriter(tmp_path, 1 << 20)
    later = _append(w, b"written after the crash")
    w.close()
    assert later.offset == locs[-1].offset + ENTRY.size + locs[-1].stored_len
    assert scan_pack(path) == [*locs, later]


def test_reopen_after_a_kill_before_the_header(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 100)
    _append(w, b"x" * 200)  # seals pack 1, creates pack 2
    w.close()
    os.truncate(pack_path(tmp_path, 2), 3)
    w = PackWriter(tmp_path, 100)
    loc = _append(w, b"y")
    w.close()
    assert (loc.pack, loc.offset) == (2, len(PACK_HEADER))
    assert scan_pack(pack_path(tmp_path, 2)) == [loc]


def test_reopen_does_not_append_to_a_pack_with_a_damaged_header(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 1 << 20)
    _append(w, b"x" * 200)
    w.close()
    path = pack_path(tmp_path, 1)
    before = path.read_bytes()
    path.write_bytes(b"garbage!" + before[8:])
    w = PackWriter(tmp_path, 1 << 20)
    loc = _append(w, b"y")
    w.close()
    assert loc.pack == 2
    assert path.read_bytes() == b"garbage!" + before[8:]


def test_read_of_a_truncated_pack_is_corrupt(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 1 << 20)
    locs = [_append(w, p) for p in _pieces(3)]
    w.close()
    os.truncate(pack_path(tmp_path, 1), locs[-1].offset + 10)
    r = PackReader(tmp_path)
    assert len(r.read_entry(locs[0])) == locs[0].stored_len
    with pytest.raises(CorruptChunk, match=f"chunk {locs[-1].chunk_id.hex()} in pack 1 .*truncated"):
        r.read_entry(locs[-1])
    r.close()


def test_read_with_a_wrong_location_is_corrupt(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 1 << 20)
    a, b = (_append(w, p) for p in _pieces(2))
    w.close()
    r = PackReader(tmp_path)
    wrong = ChunkLocation(a.chunk_id, a.pack, b.offset, a.codec, a.stored_len, a.plain_len)
    with pytest.raises(CorruptChunk, match="entry header does not match"):
        r.read_entry(wrong)
    r.close()


def test_read_from_a_missing_pack_names_chunk_and_pack(tmp_path: Path) -> None:
    r = PackReader(tmp_path)
    loc = ChunkLocation(ChunkId(bytes(range(32))), packs.PackNo(42), 16, codec.RAW, 10, 10)
    with pytest.raises(MissingChunk, match=f"chunk {bytes(range(32)).hex()}: its pack 42 is missing"):
        r.read_entry(loc)
    r.close()


def test_sync_waits_for_a_sync_already_in_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync must not return while another thread still fsyncs entries the caller appended."""
    w = PackWriter(tmp_path, 1 << 20)
    in_fsync = threading.Event()
    release = threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        assert release.wait(10)
        real_fsync(fd)

    _append(w, b"appended by thread A")
    monkeypatch.setattr(packs.os, "fsync", slow_fsync)
    other = threading.Thread(target=w.sync)  # thread B takes A's entry and blocks in fsync
    other.start()
    assert in_fsync.wait(10)
    done = threading.Event()
    mine = threading.Thread(target=lambda: (w.sync(), done.set()))
    mine.start()
    assert not done.wait(0.3), "sync returned before the entry was durable"
    release.set()
    other.join()
    mine.join()
    assert done.is_set()
    monkeypatch.undo()
    w.close()


def test_a_sealed_pack_keeps_no_descriptor(tmp_path: Path) -> None:
    """However a pack was sealed, once it is durable only the open pack's file stays open: a daemon
    seals at every upload round, and kept a descriptor (and a later deleted pack's blocks) per round."""
    w = PackWriter(tmp_path, 10_000)
    _append(w, b"synced, then sealed")
    w.sync()
    w.seal()
    _append(w, b"sealed unsynced")
    w.seal()
    for p in _pieces(15):  # sealed at the target, more than once
        _append(w, p)
    w.sync()
    assert len(list_packs(tmp_path)) >= 4
    still_open = [str(pack_path(tmp_path, w.open_pack))]
    assert open_files_under(tmp_path, settle_to=still_open) == still_open
    w.close()
    assert open_files_under(tmp_path, settle_to=[]) == []


def test_a_seal_during_a_sync_leaves_the_fsync_its_descriptor(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A pack sealed while another thread fsyncs it is closed by that sync, after its fsync."""
    w = PackWriter(tmp_path, 1 << 20)
    in_fsync = threading.Event()
    release = threading.Event()
    real_fsync = os.fsync
    errors: list[BaseException] = []

    def slow_fsync(fd: int) -> None:
        if not in_fsync.is_set():  # the first sync's fsync only (os.fsync is patched for everyone)
            in_fsync.set()
            assert release.wait(10)
        real_fsync(fd)  # EBADF if the seal had closed it

    def sync() -> None:
        try:
            w.sync()
        except BaseException as e:
            errors.append(e)

    first = pack_path(tmp_path, w.open_pack)
    _append(w, b"being synced")
    monkeypatch.setattr(packs.os, "fsync", slow_fsync)
    other = threading.Thread(target=sync)
    other.start()
    assert in_fsync.wait(10)
    sealer = threading.Thread(target=w.seal)  # seals now; its own sync waits for the other one
    sealer.start()
    deadline = time.monotonic() + 10
    while w.open_pack == 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.open_pack == 2 and str(first) in open_files_under(tmp_path)  # sealed, and still open
    release.set()
    other.join()
    sealer.join()
    monkeypatch.undo()
    assert errors == []
    still_open = [str(pack_path(tmp_path, w.open_pack))]
    assert open_files_under(tmp_path, settle_to=still_open) == still_open
    w.close()


def test_a_reader_keeps_a_bounded_number_of_packs_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a whole volume must not hold a descriptor per pack: idle ones beyond the bound are closed,
    least recently read first, and opened again when read."""
    monkeypatch.setattr(packs, "_OPEN_IDLE_MAX", 2)
    w = PackWriter(tmp_path, 10_000)
    pieces = _pieces(40)
    locs = [_append(w, p) for p in pieces]
    w.close()
    assert len({loc.pack for loc in locs}) >= 4
    r = PackReader(tmp_path)
    for _ in range(2):
        assert [r.read_entry(loc) for loc in locs] == pieces
        assert len(open_files_under(tmp_path)) == 2
    r.forget(locs[-1].pack)
    assert len(open_files_under(tmp_path)) == 1
    r.close()
    assert open_files_under(tmp_path) == []


def test_a_pack_forgotten_during_a_read_is_closed_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eviction forgets a pack while a read may still use its descriptor: the read completes, then the
    descriptor is closed."""
    w = PackWriter(tmp_path, 1 << 20)
    loc = _append(w, b"read while forgotten")
    w.close()
    r = PackReader(tmp_path)
    real_pread = os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        if n == loc.header_size:  # between the header's read and the body's
            r.forget(loc.pack)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(packs.os, "pread", pread)
    assert r.read_entry(loc) == b"read while forgotten"
    monkeypatch.undo()
    assert open_files_under(tmp_path) == []
    r.close()


def test_concurrent_appends_and_syncs_across_rotations(tmp_path: Path) -> None:
    w = PackWriter(tmp_path, 4000)
    out: list[list[ChunkLocation]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for p in _pieces(60, 300):
                out[k].append(_append(w, p))
                w.sync()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    assert errors == []
    r = PackReader(tmp_path)
    for loc in (loc for locs in out for loc in locs):
        assert codec.chunk_id(r.read_entry(loc)) == loc.chunk_id
    r.close()
    scanned = {loc for n in list_packs(tmp_path) for loc in scan_pack(pack_path(tmp_path, n))}
    assert scanned == {loc for locs in out for loc in locs}


def test_a_failed_append_leaves_no_partial_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk mid-entry (a short write, then ENOSPC) must not shift where later entries land."""
    import errno

    from vfs.errors import NoSpace

    writer = PackWriter(tmp_path, 1 << 20)
    first = writer.append(codec.chunk_id(b"a" * 100), codec.RAW, b"a" * 100, 100)
    real_write = os.write
    calls = {"n": 0}

    def short_then_full(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data)[:50])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packs.os, "write", short_then_full)
    with pytest.raises(NoSpace):
        writer.append(codec.chunk_id(b"b" * 100), codec.RAW, b"b" * 100, 100)
    monkeypatch.setattr(packs.os, "write", real_write)
    third = writer.append(codec.chunk_id(b"c" * 100), codec.RAW, b"c" * 100, 100)
    writer.close()
    reader = PackReader(tmp_path)
    assert reader.read_entry(first) == b"a" * 100
    assert reader.read_entry(third) == b"c" * 100
    assert [loc.chunk_id for loc in scan_pack(pack_path(tmp_path, first.pack))] == [first.chunk_id, third.chunk_id]
    reader.close()
