"""vfs diff and vfs restore, on an unmounted store and through the daemon."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.cli.conftest import Mount, Volume, as_json, fails, out, run


def test_diff_between_snapshots_and_against_now(volume: Volume) -> None:
    s = volume.store
    volume.write("keep.txt", b"same")
    volume.write("change.txt", b"old")
    volume.write("drop.txt", b"bye")
    run("snapshot", "create", "--store", s, "a")
    volume.write("change.txt", b"new")
    volume.write("keep.txt", b"same")  # a new version, same content: no change
    volume.remove("drop.txt")
    volume.write("sub/added.txt", b"hi")
    run("snapshot", "create", "--store", s, "b")
    assert out("diff", "--store", s, "a", "b").splitlines() == [
        "M change.txt", "- drop.txt", "+ sub/", "+ sub/added.txt"]
    volume.write("late.txt", b"!")
    assert out("diff", "--store", s, "b").splitlines() == ["+ late.txt"]
    changes = as_json("diff", "--store", s, "a", "b")["changes"]
    assert {"change": "modified", "path": "change.txt", "type": "file"} in changes
    assert out("diff", "--store", s, "b", "b") == ""
    fails(2, "diff", "--store", s, "nosuch", match="no snapshot named")
    fails(2, "diff", "--store", s, "2026-13-45", match="not a snapshot name or a valid time")
    fails(2, "diff", "--store", s, "3", match="is a version number")


def test_restore_a_file_version_as_a_new_version(volume: Volume) -> None:
    s = volume.store
    for text in (b"one", b"two", b"three"):
        volume.write("f.txt", text)
    assert "new version 4: content of version 1" in out("restore", "--store", s, "f.txt@1")
    log = as_json("log", "--store", s, "f.txt")["versions"]
    assert [(v["version"], v["origin"]) for v in log] == [(1, "write"), (2, "write"), (3, "write"), (4, "restore")]
    assert log[3]["hash"] == log[0]["hash"]
    assert run("cat", "--store", s, "f.txt").stdout == b"one"
    assert "unchanged" in out("restore", "--store", s, "f.txt@1")
    assert run("restore", "--store", s, "f.txt@2", "--to", "copy.txt").returncode == 0
    assert run("cat", "--store", s, "copy.txt").stdout == b"two"
    assert run("cat", "--store", s, "f.txt").stdout == b"one"


def test_restore_a_deleted_file_continues_its_history(volume: Volume) -> None:
    s = volume.store
    volume.write("d/gone.txt", b"first")
    volume.write("d/gone.txt", b"second")
    run("snapshot", "create", "--store", s, "before")
    volume.remove("d/gone.txt")
    assert "created" in out("restore", "--store", s, "d/gone.txt@before")
    assert run("cat", "--store", s, "d/gone.txt").stdout == b"second"
    log = as_json("log", "--store", s, "d/gone.txt")
    assert log["exists"] and [v["version"] for v in log["versions"]] == [1, 2, 3]
    volume.remove("d/gone.txt")
    out("restore", "--store", s, "d/gone.txt@1")  # by number, once more deleted
    assert run("cat", "--store", s, "d/gone.txt").stdout == b"first"


def test_restore_a_directory_leaves_newer_files_alone(volume: Volume) -> None:
    s = volume.store
    volume.write("proj/a.txt", b"a1")
    volume.write("proj/sub/b.txt", b"b1")
    volume.write("proj/same.txt", b"s")
    run("snapshot", "create", "--store", s, "good")
    volume.write("proj/a.txt", b"a2")
    volume.remove("proj/sub/b.txt")
    volume.remove("proj/sub")
    volume.write("proj/new.txt", b"n")
    changes = {c["path"]: c["action"] for c in as_json("restore", "--store", s, "proj@good")}
    assert changes == {"proj/a.txt": "restored", "proj/sub": "created", "proj/sub/b.txt": "created",
                       "proj/same.txt": "unchanged"}
    assert run("cat", "--store", s, "proj/a.txt").stdout == b"a1"
    assert run("cat", "--store", s, "proj/sub/b.txt").stdout == b"b1"
    assert run("cat", "--store", s, "proj/new.txt").stdout == b"n"
    assert out("diff", "--store", s, "good").splitlines() == ["+ proj/new.txt"]


def test_restore_refuses_to_put_a_file_over_a_directory(volume: Volume) -> None:
    volume.write("x", b"file")
    run("snapshot", "create", "--store", volume.store, "s")
    volume.remove("x")
    volume.mkdir("x")
    fails(1, "restore", "--store", volume.store, "x@s", match="exists and is a directory")


@pytest.mark.fuse
def test_diff_and_restore_through_the_daemon(mount: Mount) -> None:
    m = mount.path
    (m / "dir").mkdir()
    (m / "dir" / "a.txt").write_text("a1")
    (m / "f.txt").write_text("v1")
    run("snapshot", "create", "--mount", m, "base")
    (m / "f.txt").write_text("v2")
    (m / "dir" / "a.txt").unlink()
    (m / "dir" / "new.txt").write_text("n")
    assert out("diff", "--mount", m, "base").splitlines() == ["- dir/a.txt", "+ dir/new.txt", "M f.txt"]
    # The kernel has cached f.txt's pages: the daemon must invalidate them.
    with open(m / "f.txt") as f:
        assert f.read() == "v2"
    assert "content of version 1" in out("restore", f"{m / 'f.txt'}@1")
    assert (m / "f.txt").read_text() == "v1"
    out("restore", f"{m / 'dir'}@base")
    assert sorted(os.listdir(m / "dir")) == ["a.txt", "new.txt"]
    assert (m / "dir" / "a.txt").read_text() == "a1"
    (m / "f.txt").unlink()
    out("restore", f"{m / 'f.txt'}", "--to", f"{m / 'dir'}")
    assert (m / "dir" / "f.txt").read_text() == "v1"
    assert as_json("log", m / "f.txt")["exists"] is False
    fails(2, "restore", f"{m / 'f.txt'}@abc", match="no snapshot named")
    fails(2, "restore", f"{m / 'f.txt'}@99999", match="has no version")


@pytest.mark.fuse
def test_restore_refuses_a_file_open_for_writing(mount: Mount) -> None:
    f = mount.path / "busy.txt"
    f.write_text("v1")
    run("log", f)
    fd = os.open(f, os.O_WRONLY)
    try:
        os.write(fd, b"v2")
        fails(1, "restore", f"{f}@1", match="open for writing")
    finally:
        os.close(fd)
    out("restore", f"{f}@1")
    assert f.read_text() == "v1"


def one_line_error(done: subprocess.CompletedProcess[bytes], code: int) -> str:
    """The stderr of a command that failed as it should: exit `code`, one `vfs: error:` line."""
    err = done.stderr.decode()
    assert done.returncode == code, (done.returncode, err)
    assert err.startswith("vfs: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_diff_from_before_the_store_is_from_the_empty_tree(volume: Volume) -> None:
    s = volume.store
    volume.write("d/a.txt", b"a")
    everything = ["+ d/", "+ d/a.txt"]
    # The store was made a moment ago: yesterday, an hour ago, last friday it was empty.
    assert out("diff", "--store", s, "yesterday").splitlines() == everything
    assert out("diff", "--store", s, "-1h").splitlines() == everything  # no '--' needed
    assert out("diff", "-1d12h", "--store", s).splitlines() == everything
    assert as_json("diff", "--store", s, "midnight yesterday")["from"] == 0
    assert out("diff", "--store", s, "last friday 17:00", "now").splitlines() == everything
    assert out("diff", "--store", s, "-2d", "-1d") == ""
    err = one_line_error(run("diff", "--store", s, "the day after never", check=False), 2)
    assert "no snapshot named" in err


def test_restore_delete_makes_a_directory_exactly_as_it_was(volume: Volume) -> None:
    s = volume.store
    volume.write("proj/a.txt", b"a1")
    volume.write("proj/sub/b.txt", b"b1")
    volume.write("proj/link-target", b"t")
    run("snapshot", "create", "--store", s, "good")
    volume.write("proj/a.txt", b"a2")
    volume.write("proj/new.txt", b"n")
    volume.write("proj/newdir/deep/x.txt", b"x")
    volume.remove("proj/sub/b.txt")
    volume.remove("proj/sub")
    volume.write("proj/sub", b"a file where a directory was")
    volume.write("outside.txt", b"o")
    changed = ["+ outside.txt", "M proj/a.txt", "+ proj/new.txt", "+ proj/newdir/", "+ proj/newdir/deep/",
               "+ proj/newdir/deep/x.txt", "M proj/sub", "- proj/sub/b.txt"]
    assert out("diff", "--store", s, "good").splitlines() == changed

    planned = out("restore", "--store", s, "proj@good", "--delete", "--dry-run").splitlines()
    assert planned[-1] == "dry run: nothing was changed"
    assert out("diff", "--store", s, "good").splitlines() == changed  # nothing was
    done = as_json("restore", "--store", s, "proj@good", "--delete")
    assert {(c["action"], c["path"]) for c in done} == {
        ("removed", "proj/new.txt"), ("removed", "proj/newdir/deep/x.txt"), ("removed", "proj/newdir/deep"),
        ("removed", "proj/newdir"), ("removed", "proj/sub"), ("created", "proj/sub"), ("created", "proj/sub/b.txt"),
        ("restored", "proj/a.txt"), ("unchanged", "proj/link-target")}
    assert [line.split()[:2] for line in planned[:-1]] == [[c["action"], c["path"]] for c in done]
    # Exactly as it was, outside untouched; what was removed keeps its history.
    assert out("diff", "--store", s, "good").splitlines() == ["+ outside.txt"]
    gone = as_json("log", "--store", s, "proj/new.txt")
    assert gone["exists"] is False and [v["version"] for v in gone["versions"]] == [1]
    assert run("cat", "--store", s, "proj/new.txt").stdout == b"n"
    assert out("restore", "--store", s, "proj@good", "--delete").split() == [
        "unchanged", "proj/a.txt", "unchanged", "proj/sub/b.txt", "unchanged", "proj/link-target"]
    err = one_line_error(run("restore", "--store", s, "proj@nosuch", "--delete", check=False), 2)
    assert "no snapshot named" in err


@pytest.mark.fuse
def test_restore_delete_through_the_daemon(mount: Mount) -> None:
    m = mount.path
    (m / "dir").mkdir()
    (m / "dir" / "a.txt").write_text("a1")
    run("snapshot", "create", "--mount", m, "base")
    (m / "dir" / "a.txt").write_text("a2")
    (m / "dir" / "new").mkdir()
    (m / "dir" / "new" / "n.txt").write_text("n")
    assert (m / "dir" / "new" / "n.txt").stat().st_size == 1  # the kernel now caches these names
    planned = out("restore", f"{m / 'dir'}@base", "--delete", "--dry-run").splitlines()
    assert planned == ["removed   dir/new/n.txt", "removed   dir/new", "restored  dir/a.txt  (content of version 1)",
                       "dry run: nothing was changed"]
    assert (m / "dir" / "new" / "n.txt").read_text() == "n"
    out("restore", f"{m / 'dir'}@base", "--delete")
    assert not (m / "dir" / "new" / "n.txt").exists() and not (m / "dir" / "new").exists()
    assert sorted(os.listdir(m / "dir")) == ["a.txt"]
    assert (m / "dir" / "a.txt").read_text() == "a1"
    assert out("diff", "--mount", m, "base") == ""
    assert run("cat", f"{m / 'dir' / 'new' / 'n.txt'}").stdout == b"n"  # its history stays
