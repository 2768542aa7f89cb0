"""The Volume API on an unmounted store: put/get, history, hashes and references, errors."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vfs
from vfs.api.volume import Volume
from vfs.errors import NoSuchPath, NotAStore, NotWritable, StoreLocked, UsageError, VfsError
from vfs.repository import Repository
from vfs.store.chunkstore import ChunkStore


def tree(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "local"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def pack_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "packs").rglob("*") if p.is_file())


def test_put_of_an_unchanged_folder_makes_no_version_and_stores_nothing(store: Path, tmp_path: Path) -> None:
    local = tree(tmp_path, {"a.txt": b"alpha", "sub/b.bin": os.urandom(300_000), "sub/deep/c": b""})
    with vfs.open(store, writable=True) as vol:
        first = vol.put("data", local, progress=False)
        assert sorted(first.created) == ["data/", "data/a.txt", "data/sub/", "data/sub/b.bin", "data/sub/deep/",
                                         "data/sub/deep/c"]
        size, head = pack_bytes(store), vol._repo.catalog.head().no
        again = vol.put("data", local, progress=False)
        assert again.created == again.updated == [] and again.stored_bytes == 0
        assert sorted(again.unchanged) == ["data/a.txt", "data/sub/b.bin", "data/sub/deep/c"]
        assert pack_bytes(store) == size and vol._repo.catalog.head().no == head  # no commit at all
        # Same content, new mtime: hashed, found unchanged; new content: one new version of that file only.
        os.utime(local / "a.txt", ns=(1, 1))
        assert vol.put("data", local, progress=False).unchanged == again.unchanged
        (local / "a.txt").write_bytes(b"ALPHA")
        third = vol.put("data", local, progress=False)
        assert third.updated == ["data/a.txt"] and len(third.unchanged) == 2
        assert [v.version for v in vol.versions("data/a.txt")] == [1, 2]
        assert [v.version for v in vol.versions("data/sub/b.bin")] == [1]


def test_put_a_file_bytes_and_a_file_object(store: Path, tmp_path: Path) -> None:
    local = tmp_path / "one.txt"
    local.write_bytes(b"one")
    with vfs.open(store, writable=True) as vol:
        vol.mkdir("dir")
        assert vol.put("dir", local, progress=False).created == ["dir/one.txt"]  # into an existing directory
        vol.put("x/y.bin", b"bytes", progress=False)
        with open(local, "rb") as f:
            vol.put("x/y.bin", f, progress=False)
        assert vol.read_bytes("x/y.bin") == b"one" and vol.read_bytes("x/y.bin@1") == b"bytes"
        with vol.open("x/new.bin", "wb") as w:
            w.write(b"written")
        assert vol.read_bytes("x/new.bin") == b"written"
        with pytest.raises(UsageError, match="mode 'r': the volume's files open as 'rb', 'wb' or 'xb'"):
            vol.open("x/new.bin", "r")
        with pytest.raises(RuntimeError), vol.open("x/new.bin", "wb") as w:
            w.write(b"lost")
            raise RuntimeError("discarded, not put")
        assert vol.read_bytes("x/new.bin") == b"written"


def test_get_a_tree_as_it_was_and_a_file_by_hash(store: Path, tmp_path: Path) -> None:
    local = tree(tmp_path, {"a.txt": b"v1", "sub/b.txt": b"b"})
    with vfs.open(store, writable=True) as vol:
        vol.put("d", local, progress=False)
        vol.snapshot("before")
        (local / "a.txt").write_bytes(b"v2")
        (local / "sub" / "new.txt").write_bytes(b"new")
        vol.put("d", local, progress=False)
        out = vol.get("d@before", tmp_path / "out", progress=False)
        assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
        assert (out / "a.txt").read_bytes() == b"v1"
        digest = vol.hash("d/a.txt@1")
        assert digest.startswith("blake3:") and len(digest) == 7 + 64
        got = vol.get(digest, tmp_path / "by-hash")
        assert got.read_bytes() == b"v1"
        assert vol.read_bytes(digest[:7 + 16]) == b"v1"  # a unique prefix will do


def local_tree(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """path -> (content, mode, mtime in ns) of every regular file under `root`; an empty file's mtime is
    left out (0): it has no version, and the put that made it keeps no time for it."""
    return {str(f.relative_to(root)): (f.read_bytes(), f.stat().st_mode & 0o7777, f.stat().st_size and
                                       f.stat().st_mtime_ns) for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.fixture
def mixed_tree(tmp_path: Path) -> Path:
    """Small, empty and multi-chunk files (one past the writers' small-file size), in nested directories."""
    files = {f"d{i % 3}/e{i % 2}/f{i:03d}": os.urandom(i * 37) for i in range(40)}  # f000 is empty
    files["big/one.bin"] = os.urandom(5 << 20)
    files["d0/empty-last"] = b""
    root = tree(tmp_path, files)
    (root / "d1" / "e1" / "f001").chmod(0o600)
    (root / "d2" / "e0" / "f002").chmod(0o755)
    os.utime(root / "d1" / "e1" / "f037", ns=(10**18, 10**18))
    return root


@pytest.mark.parametrize("batch_files", [1, 7, 256])
def test_get_of_a_tree_writes_every_file_with_its_mode_and_time(store: Path, tmp_path: Path, mixed_tree: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 batch_files: int) -> None:
    from vfs.api import download

    monkeypatch.setattr(download, "BATCH_FILES", batch_files)
    with vfs.open(store, writable=True) as vol:
        vol.put("t", mixed_tree, progress=False)
        out = vol.get("t", tmp_path / "out", progress=False)
    assert local_tree(out) == local_tree(mixed_tree)


def test_get_of_a_tree_reports_a_file_it_cannot_write(store: Path, tmp_path: Path, mixed_tree: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.put("t", mixed_tree, progress=False)
        (tmp_path / "out" / "d0" / "e1" / "f003").mkdir(parents=True)  # a small file's place, taken
        with pytest.raises(IsADirectoryError):
            vol.get("t", tmp_path / "out", progress=False)


def test_get_of_a_tree_resolves_again_when_a_location_goes_stale(store: Path, tmp_path: Path, mixed_tree: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk repacked (by a mounted volume's gc) after the stream resolved its location: the files not
    written yet are read again with fresh locations, not reported as damage."""
    from vfs.errors import MissingChunk

    with vfs.open(store, writable=True) as vol:
        vol.put("t", mixed_tree, progress=False)
        real = ChunkStore.read_chunks
        streams = []

        def stale_after_ten(self: ChunkStore, locs: object) -> object:
            streams.append(locs)
            first = len(streams) == 1  # only the stream meets the repack: a file of 11 chunks read after it must not
            for n, data in enumerate(real(self, locs)):  # type: ignore[arg-type]
                if n == 10 and first:
                    raise MissingChunk("pack 1 is gone")
                yield data

        monkeypatch.setattr(ChunkStore, "read_chunks", stale_after_ten)
        out = vol.get("t", tmp_path / "out", progress=False)
        assert len(streams) >= 2  # the stream, then file by file (iter_content reads through read_chunks too)
    assert local_tree(out) == local_tree(mixed_tree)


def test_open_reads_at_any_offset_and_only_the_chunks_it_needs(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(24 << 20)
    with vfs.open(store, writable=True) as vol:
        vol.write_bytes("big", data)
        version = vol._repo.catalog.version_at(vol._repo.catalog.lookup(1, b"big"))  # type: ignore[arg-type]
        assert version is not None and len(version.chunks) > 12
        read: list[bytes] = []
        real = ChunkStore.read_chunk

        def counting(self: ChunkStore, loc: object, **kw: bool) -> bytes:
            read.append(loc.chunk_id)  # type: ignore[attr-defined]
            return real(self, loc, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(ChunkStore, "read_chunk", counting)
        with vol.open("big") as f:
            f.seek(15 << 20)
            assert f.read(1000) == data[15 << 20:(15 << 20) + 1000]
            assert f.tell() == (15 << 20) + 1000
            f.seek(-10, os.SEEK_END)
            assert f.read() == data[-10:]
        # the chunks under a 1 MiB buffer at 15 MiB and at the end (mean chunk ~640 KiB), not the 41 of the file
        assert 0 < len(set(read)) <= 6, f"read {len(set(read))} of {len(version.chunks)} chunks"


def test_ls_stat_exists_walk_at_a_spec(store: Path, tmp_path: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.write_text("d/a.txt", "1")
        vol.snapshot("s")
        vol.write_text("d/a.txt", "22")
        vol.write_text("d/e/b.txt", "3")
        assert vol.ls("d") == ["d/a.txt", "d/e"]
        assert vol.ls("d@s") == ["d/a.txt@s"]
        (entry,) = vol.ls("d@s", detail=True)
        assert not isinstance(entry, str)
        assert (entry.type, entry.size, entry.version) == ("file", 1, 1)
        assert vol.read_text(entry.name) == "1"  # a name from a listing at a spec reads as it was
        assert vol.stat("d/a.txt").size == 2 and vol.stat("d").type == "directory"
        assert vol.exists("d/a.txt@1") and not vol.exists("d/a.txt@3") and not vol.exists("nope")
        assert list(vol.walk("d")) == [("d", ["e"], ["a.txt"]), ("d/e", [], ["b.txt"])]


def test_versions_in_a_time_range_and_snapshots_diff_restore(store: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.write_text("f", "one")
        vol.snapshot("first")
        vol.write_text("f", "two")
        vol.write_text("g", "new")
        assert [(v.path, v.version) for v in vol.versions("", since="midnight yesterday")] == [
            ("g", 1), ("f", 2), ("f", 1)]
        assert vol.versions("f", since="-1h", until="-30m") == []
        assert [v.version for v in vol.versions("f", until="now")] == [1, 2]
        assert [str(d) for d in vol.diff("first")] == ["M f", "+ g"]
        changes = vol.restore("f@first")
        assert [c.action for c in changes] == ["restored"] and vol.read_text("f") == "one"
        assert [v.origin for v in vol.versions("f")] == ["put", "put", "restore"]
        assert [s.name for s in vol.snapshots()] == ["first"]
        name = vol.snapshot()
        vol.delete_snapshot("first")
        assert [s.name for s in vol.snapshots()] == [name]
        removed = vol.remove("g")
        assert removed == ["g"] and not vol.exists("g") and vol.read_text(f"g@{name}") == "new"


def test_a_reference_loads_from_the_store_and_through_vfs_cat(store: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.write_bytes("results/run 1.csv", b"a,b\n1,2\n")
        ref = vol.url("results/run 1.csv")
    assert ref.startswith("blake3://") and ref.endswith("/run%201.csv")
    assert vfs.load(ref, location=store) == b"a,b\n1,2\n"
    done = subprocess.run([sys.executable, "-m", "vfs.cli.main", "cat", ref, "--store", str(store)],
                          capture_output=True, timeout=60)
    assert done.returncode == 0 and done.stdout == b"a,b\n1,2\n", done.stderr
    with pytest.raises(UsageError, match="not a vfs content reference"):
        vfs.load("blake3://abc", location=store)
    with pytest.raises(NoSuchPath, match="no content with hash"):
        vfs.load("blake3://" + "0" * 64, location=store)


# -- bad input: the exception a Python user expects, and its message ------------------------------
def test_a_missing_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotAStore, match=r"no store at .*nowhere: the directory does not exist"):
        vfs.open(tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("not a store")
    with pytest.raises(NotAStore, match=r"a-file is not a vfs store"):
        vfs.open(tmp_path / "a-file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotAStore, match=r"empty is not a vfs store \(no catalog.db\); create one with 'vfs init"):
        vfs.open(tmp_path / "empty")


def test_a_location_of_another_kind_is_refused(store: Path) -> None:
    # s3:// locations: tests/api/test_s3_location.py
    with pytest.raises(UsageError, match="a location is a store directory or s3://BUCKET/PREFIX"):
        vfs.open("http://example.com/x")
    with pytest.raises(UsageError, match="endpoint_url and cache_dir apply to s3:// locations only"):
        vfs.open(store, endpoint_url="http://127.0.0.1:1")
    with vfs.open(store, password="secret") as vol:  # accepted: used by encrypted volumes, ignored here
        assert vol.ls() == []


def test_a_bad_spec_is_a_file_not_found_error(store: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.write_text("f", "x")
        for spec, message in [("f@9", "f has no version 9 (it has versions 1 to 1)"),
                              ("f@nosuchsnap", "no snapshot named 'nosuchsnap'"),
                              ("f@2026-13-45", "is not a snapshot name or a valid time"),
                              ("f@1970-01-02", "the store did not exist yet at 1970-01-02"),
                              ("missing", "missing does not exist and never did")]:
            with pytest.raises(FileNotFoundError, match=re.escape(message)) as e:
                vol.read_bytes(spec)
            assert isinstance(e.value, NoSuchPath) and e.value.errno == errno.ENOENT
            assert isinstance(e.value, VfsError)


def test_a_write_to_history_or_a_read_only_volume_is_a_permission_error(store: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.write_text("f", "x")
        vol.snapshot("snap")
        for history in ("f@1", "f@snap", "f@-1s", "f@now"):
            with pytest.raises(PermissionError, match=f"{history}: history is read-only") as e:
                vol.write_text(history, "y")
            assert isinstance(e.value, NotWritable) and e.value.errno == errno.EROFS
        with pytest.raises(NotWritable):
            vol.put("f@1", b"y")
        vol.write_text("user@host.txt", "a name with an '@' that names no history is a name")
        assert vol.ls() == ["f", "user@host.txt"]
    with vfs.open(store) as ro:
        with pytest.raises(PermissionError, match="opened read-only: open it with writable=True") as e:
            ro.write_text("f", "z")
        assert isinstance(e.value, NotWritable) and e.value.errno == errno.EROFS
        for change in (lambda: ro.snapshot("s2"), lambda: ro.delete_snapshot("snap"), lambda: ro.remove("f"),
                       lambda: ro.restore("f@1"), lambda: ro.mkdir("d"), lambda: ro.open("g", "wb")):
            with pytest.raises(NotWritable):
                change()
    with vfs.open(store) as vol:
        assert vol.read_text("f") == "x" and [s.name for s in vol.snapshots()] == ["snap"]


def test_a_write_inside_a_history_view_is_a_permission_error(store: Path) -> None:
    """`d@snap/x` and `/.snapshots/...` are views in the mount: a write there must not make a real `d@snap`
    or `.snapshots` directory (which would hide the view) but fail as history does."""
    with vfs.open(store, writable=True) as vol:
        vol.write_text("d/x", "1")
        vol.snapshot("snap")
        for path, view in [("d@snap/x", "d@snap"), ("d@1970-01-02/new/y", "d@1970-01-02"),
                           (".snapshots/snap/d/x", ".snapshots"), (".snapshots", ".snapshots")]:
            with pytest.raises(PermissionError, match=re.escape(f"{path}: {view} is history, which is read-only")):
                vol.write_text(path, "2")
            with pytest.raises(NotWritable):
                vol.mkdir(path)
        with pytest.raises(NotWritable):
            vol.put("d@snap", b"3")
        assert vol.ls() == ["d"] and vol.read_text("d/x") == "1"
        vol.write_text("d/.snapshots", "only the root's is a view")
        vol.write_text("user@host/x", "a directory whose '@' names no history is a directory")
        assert vol.ls() == ["d", "user@host"] and vol.ls("d") == ["d/.snapshots", "d/x"]


def test_what_names_nothing_is_a_file_not_found_error(store: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.write_text("f", "x")
        for call, message in [(lambda: vol.remove("missing"), "missing does not exist in the volume"),
                              (lambda: vol.delete_snapshot("nosuch"), "no snapshot named 'nosuch'"),
                              (lambda: vol.restore("missing@-1s"), "missing"),
                              (lambda: vol.restore("f@7"), "f has no version 7"),
                              (lambda: vol.diff("nosuch"), "no snapshot named 'nosuch'"),
                              (lambda: vol.diff("-1s", "2026-13-45"), "is not a snapshot name or a valid time"),
                              (lambda: vol.fetch(["missing"]), "missing does not exist"),
                              (lambda: vol.versions("missing"), "missing does not exist and never did")]:
            with pytest.raises(FileNotFoundError, match=re.escape(message)) as e:
                call()
            assert isinstance(e.value, NoSuchPath), message
        with pytest.raises(UsageError, match="a list of paths"):
            vol.fetch("f")


def test_an_unmounted_store_is_locked_while_written_and_free_between_writes(store: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        vol.write_text("a", "1")
        Repository.open(store).close()  # the API let the lock go after its write
        with Repository.open(store):  # another process would hold it now
            with pytest.raises(StoreLocked, match="is in use by pid"):
                vol.write_text("a", "2")
            assert vol.read_text("a") == "1"  # reading takes no lock
        vol.write_text("a", "2")
        assert vol.read_text("a") == "2"


def test_import_vfs_is_cheap_and_the_api_is_documented() -> None:
    code = ("import sys, vfs; assert vfs.open.__doc__ and vfs.Volume.put.__doc__;"
            " bad = {'trio', 'pyfuse3', 'tqdm', 'fsspec', 'dateparser'} & set(sys.modules); assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Store `source` at the volume path `dest`" in (Volume.put.__doc__ or "")
    assert (Path(vfs.__file__).parent / "py.typed").exists()


def test_progress_shows_on_request_and_progress_false_silences_it(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    local = tree(tmp_path, {f"f{i}": os.urandom(1000) for i in range(5)})
    with vfs.open(store, writable=True) as vol:
        vol.put("quiet", local, progress=False)
        vol.get("quiet", tmp_path / "q", progress=False)
        assert capsys.readouterr().err == ""
        vol.put("shown", local, progress=True)
        vol.get("shown", tmp_path / "s", progress=True)
        err = capsys.readouterr().err
        assert "put local" in err and "5/5 files" in err and "get shown" in err


def test_sync_status_and_fetch_of_a_store_without_a_remote(store: Path) -> None:
    with vfs.open(store, writable=True) as vol:
        assert vol.status()["remote"] is None and vol.status()["mounted"] is False
        with pytest.raises(UsageError, match="no remote"):
            vol.sync(progress=False)
        vol.write_text("f", "x")
        assert vol.fetch(["f", ""], progress=False) == 0  # all its data is local
