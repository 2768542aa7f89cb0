"""vfs log and vfs cat: a file's versions, and content by version, snapshot, time or hash."""

from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from tests.cli.conftest import Mount, Volume, as_json, fails, out, run
from vfs.repository import Repository
from vfs.store.packs import pack_path
from vfs.types import ROOT_INO, InodeNo


def test_log_of_a_file_with_three_versions(volume: Volume) -> None:
    for text in (b"one", b"two!", b"three"):
        volume.write("f.txt", text)
    log = as_json("log", "--store", volume.store, "f.txt")
    assert [(v["version"], v["size"], v["origin"]) for v in log["versions"]] == [
        (1, 3, "write"), (2, 4, "write"), (3, 5, "write")]
    assert all(len(v["hash"]) == 64 for v in log["versions"])
    lines = out("log", "--store", volume.store, "/f.txt").splitlines()
    assert lines[0].split() == ["VERSION", "TIME", "SIZE", "HASH", "ORIGIN"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3"]
    assert log["versions"][0]["hash"].startswith(lines[1].split()[4])
    assert as_json("log", "--store", volume.store, "f.txt", "--since=-1h")["versions"] == log["versions"]
    assert as_json("log", "--store", volume.store, "f.txt", "--until=-1h")["versions"] == []
    fails(2, "log", "--store", volume.store, "f.txt", "--since", "2026-13-45", match="not a valid time")


def test_log_of_a_deleted_file(volume: Volume) -> None:
    volume.write("gone.txt", b"a")
    volume.write("gone.txt", b"b")
    volume.remove("gone.txt")
    log = as_json("log", "--store", volume.store, "gone.txt")
    assert log["exists"] is False and [v["version"] for v in log["versions"]] == [1, 2]
    fails(1, "log", "--store", volume.store, "never.txt", match="never did")


def test_cat_by_version_snapshot_time_and_hash(volume: Volume) -> None:
    s = volume.store
    volume.write("f.txt", b"one")
    run("snapshot", "create", "--store", s, "snap")
    time.sleep(0.05)
    between = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 1))
    time.sleep(1.2)
    volume.write("f.txt", b"two")
    assert run("cat", "--store", s, "f.txt@1").stdout == b"one"
    assert run("cat", "--store", s, "f.txt@snap").stdout == b"one"
    assert run("cat", "--store", s, f"f.txt@{between}").stdout == b"one"
    assert run("cat", "--store", s, "f.txt").stdout == b"two"
    full = as_json("log", "--store", s, "f.txt")["versions"][1]["hash"]
    assert run("cat", "--store", s, f"blake3:{full}").stdout == b"two"
    assert run("cat", "--store", s, f"blake3:{full[:16]}").stdout == b"two"
    fails(1, "cat", "--store", s, "blake3:" + "00" * 32, match="no content")
    fails(2, "cat", "--store", s, "blake3:xyz", match="hex digits")


@pytest.mark.parametrize(("spec", "message"), [
    ("abc", "no snapshot named 'abc'"),
    ("0", "not a snapshot name or a valid time"),
    ("99999", "has no version 99999"),
    ("2026-13-45", "not a snapshot name or a valid time"),
    ("1999-01-01", "did not exist yet"),
])
def test_bad_specs_exit_2(volume: Volume, spec: str, message: str) -> None:
    volume.write("f", b"x")
    fails(2, "cat", "--store", volume.store, f"f@{spec}", match=message)
    fails(2, "restore", "--store", volume.store, f"f@{spec}", match=message)


@pytest.mark.fuse
def test_log_and_cat_through_a_mount(mount: Mount) -> None:
    f = mount.path / "notes.txt"
    for text in ("one", "two", "three"):
        f.write_text(text)
        run("log", f)  # has the daemon commit what was closed: one version per write
    log = as_json("log", f)
    assert [v["size"] for v in log["versions"]] == [3, 3, 5]
    assert run("cat", f"{f}@2").stdout == b"two"
    assert run("cat", "--mount", mount.path, "blake3:" + log["versions"][0]["hash"]).stdout == b"one"
    fails(2, "cat", f"{f}@0")
    fails(2, "cat", "/tmp/not-in-a-mount@1", match="not inside a vfs mount")


@pytest.mark.parametrize("spec", [
    "9999999999999999999", "-99999999999y", "2263-01-01", "0001-01-01", "²", "\u0661", "\udcff", "caf\udce9",
])
def test_out_of_range_and_odd_specs_are_one_line_errors(volume: Volume, spec: str) -> None:
    volume.write("f", b"x")
    for command in ("cat", "restore"):
        err = fails(2, command, "--store", volume.store, f"f@{spec}")
        assert err.count("\n") == 1 and err.startswith("vfs: error: "), err
    fails(2, "log", "--store", volume.store, "f", f"--since={spec}", match="not a valid time")


def test_log_cat_restore_take_any_name(volume: Volume, monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a locale such as en_US.UTF-8, where Python's stdout refuses what is not UTF-8: the names
    # that are not must still print, as the bytes they are.
    monkeypatch.setenv("PYTHONIOENCODING", "utf-8:strict")
    s = volume.store
    for name in ("caf\udce9.txt", "user@host.txt", "user@caf\udce9.txt", "f@1", "d\udcff/x@y"):
        volume.write(name, b"one")
        volume.write(name, b"two")
        assert [v["version"] for v in as_json("log", "--store", s, name)["versions"]] == [1, 2], name
        assert run("cat", "--store", s, name).stdout == b"two", name
        assert run("cat", "--store", s, f"{name}@1").stdout == b"one", name
        done = run("restore", "--store", s, f"{name}@1")
        assert done.stdout.startswith(b"restored  " + os.fsencode(name)), done.stdout
        assert run("cat", "--store", s, name).stdout == b"one", name
        assert run("restore", "--store", s, f"{name}@2", "--to", "copy@2").returncode == 0
        assert run("cat", "--store", s, "copy@2").stdout == b"two", name
        volume.remove("copy@2")
    assert run("cat", "--store", s, "user@host.txt@2").stdout == b"two"
    assert as_json("log", "--store", s, "caf\udce9.txt")["path"] == "caf\udce9.txt"
    # The real f@1 wins over version 1 of a file f, as in the mount; a name that never was is an error.
    volume.write("f", b"f, version 1")
    assert run("cat", "--store", s, "f@1").stdout == b"one"
    fails(2, "log", "--store", s, "nothing@1", match="log takes a path without @SPEC")
    volume.remove("user@host.txt")
    assert as_json("log", "--store", s, "user@host.txt")["exists"] is False


@pytest.mark.fuse
def test_log_cat_restore_of_odd_names_through_a_mount(mount: Mount, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONIOENCODING", "utf-8:strict")  # see test_log_cat_restore_take_any_name
    f = os.fsdecode(os.fsencode(mount.path) + b"/caf\xe9@x.txt")
    for text in ("one", "two"):
        with open(f, "w") as out:
            out.write(text)
        run("log", f)  # has the daemon commit what was closed
    assert [v["version"] for v in as_json("log", f)["versions"]] == [1, 2]
    assert run("cat", f"{f}@1").stdout == b"one"
    assert b"restored" in run("restore", f"{f}@1").stdout  # through the daemon
    with open(f) as back:
        assert back.read() == "one"


def one_line_error(done: subprocess.CompletedProcess[bytes], code: int) -> str:
    """The stderr of a command that failed as it should: exit `code`, one `vfs: error:` line."""
    err = done.stderr.decode()
    assert done.returncode == code, (done.returncode, err)
    assert err.startswith("vfs: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_log_of_a_directory_lists_everything_under_it_newest_first(volume: Volume) -> None:
    s = volume.store
    volume.write("d/a.txt", b"a1")
    volume.write("outside.txt", b"o")
    volume.write("d/sub/b.txt", b"b1")
    volume.write("d/a.txt", b"a2!")
    volume.write("d/gone.txt", b"g")
    volume.remove("d/gone.txt")
    log = as_json("log", "--store", s, "d")
    assert log["path"] == "d" and log["exists"] is True
    assert [(v["path"], v["version"], v["size"], v["origin"]) for v in log["versions"]] == [
        ("d/gone.txt", 1, 1, "write"), ("d/a.txt", 2, 3, "write"), ("d/sub/b.txt", 1, 2, "write"),
        ("d/a.txt", 1, 2, "write")]
    times = [v["time_ns"] for v in log["versions"]]
    assert times == sorted(times, reverse=True)
    lines = out("log", "--store", s, "d/").splitlines()
    assert lines[0].split() == ["TIME", "VERSION", "SIZE", "ORIGIN", "PATH"]
    assert [line.split()[-1] for line in lines[1:]] == ["d/gone.txt", "d/a.txt", "d/sub/b.txt", "d/a.txt"]
    everything = as_json("log", "--store", s, ".")["versions"]
    assert sorted({v["path"] for v in everything}) == ["d/a.txt", "d/gone.txt", "d/sub/b.txt", "outside.txt"]
    # Without '=': a relative time is a value, not an option.
    assert as_json("log", "--store", s, "d", "--since", "-1h")["versions"] == log["versions"]
    assert as_json("log", "--store", s, "d", "--until", "-1h")["versions"] == []
    # A directory that was deleted keeps its history under its name.
    volume.remove("d/sub/b.txt")
    volume.remove("d/sub")
    assert [v["path"] for v in as_json("log", "--store", s, "d/sub")["versions"]] == ["d/sub/b.txt"]


def test_log_since_and_until_take_natural_phrases(volume: Volume) -> None:
    s = volume.store
    volume.write("f", b"1")
    volume.write("f", b"22")
    all_versions = as_json("log", "--store", s, "f")["versions"]
    assert len(all_versions) == 2
    for since in ("-1h", "midnight yesterday", "last friday 17:00", "2 hours ago", "yesterday"):
        assert as_json("log", "--store", s, "f", "--since", since)["versions"] == all_versions, since
    assert as_json("log", "--store", s, "f", "--until", "midnight yesterday")["versions"] == []
    for bad in ("the day after never", "a", "-1x", "²"):
        done = run("log", "--store", s, "f", f"--since={bad}", check=False)
        assert "not a valid time" in one_line_error(done, 2), bad


def test_cat_a_byte_range(volume: Volume) -> None:
    s = volume.store
    volume.write("f", b"0123456789")
    assert run("cat", "--store", s, "f", "--offset", "2", "--length", "3").stdout == b"234"
    assert run("cat", "--store", s, "f", "--offset", "8").stdout == b"89"
    assert run("cat", "--store", s, "f", "--length", "4").stdout == b"0123"
    assert run("cat", "--store", s, "f", "--offset", "20").stdout == b""
    assert run("cat", "--store", s, "f", "--offset", "3", "--length", "0").stdout == b""
    volume.write("f", b"abcdef")
    assert run("cat", "--store", s, "f@1", "--offset", "9", "--length", "5").stdout == b"9"
    full = as_json("log", "--store", s, "f")["versions"][1]["hash"]
    assert run("cat", "--store", s, f"blake3:{full}", "--offset", "1", "--length", "2").stdout == b"bc"
    for option, value in (("--offset", "-1"), ("--length", "x"), ("--offset", "1e3"), ("--length", "\u0661")):
        done = run("cat", "--store", s, "f", option, value, check=False)
        assert "not a number of bytes" in one_line_error(done, 2), (option, value)
        assert done.stdout == b""


def test_cat_a_byte_range_reads_only_the_chunks_it_covers(volume: Volume) -> None:
    data = random.Random(15).randbytes(4 << 20)  # several chunks (their mean is ~640 KiB)
    volume.write("big", data)
    with Repository.open(volume.store) as repo:
        version = repo.catalog.version_at(lookup(repo, "big"))
        assert version is not None and len(version.chunks) >= 3
        first = repo.catalog.locate(version.chunks[0][0])
        last_start = sum(n for _, n in version.chunks[:-1])
    # Damage the first chunk's stored bytes: reading it now fails, reading past it must not touch it.
    with open(pack_path(volume.store / "packs", first.pack), "r+b") as pack:
        pack.seek(first.offset + 41)
        damaged = bytes(b ^ 0xFF for b in pack.read(64))
        pack.seek(first.offset + 41)
        pack.write(damaged)
    s = volume.store
    tail = run("cat", "--store", s, "big", "--offset", str(last_start + 10), "--length", "1000")
    assert tail.stdout == data[last_start + 10 : last_start + 1010]
    assert run("cat", "--store", s, "big", "--offset", str(last_start)).stdout == data[last_start:]
    one_line_error(run("cat", "--store", s, "big", check=False), 3)  # CorruptChunk
    one_line_error(run("cat", "--store", s, "big", "--length", "10", check=False), 3)
    # The damage is ours: put the bytes back for the volume fixture's final check.
    with open(pack_path(volume.store / "packs", first.pack), "r+b") as pack:
        pack.seek(first.offset + 41)
        damaged = pack.read(64)
        pack.seek(first.offset + 41)
        pack.write(bytes(b ^ 0xFF for b in damaged))
    assert run("cat", "--store", s, "big").stdout == data


def lookup(repo: Repository, name: str) -> InodeNo:
    ino = repo.catalog.lookup(ROOT_INO, name.encode())
    assert ino is not None
    return ino
