"""vfs snapshot create / list / delete, on an unmounted store and through the daemon."""

from __future__ import annotations

import os

import pytest

from tests.cli.conftest import Mount, Volume, as_json, fails, out, run


def test_create_list_delete_on_a_store(volume: Volume) -> None:
    s = volume.store
    volume.write("a.txt", b"12345")
    volume.write("d/b.txt", b"xy")
    assert out("snapshot", "create", "--store", s, "first").strip() == "first"
    volume.write("a.txt", b"1234567890")
    default = out("snapshot", "create", "--store", s).strip()
    assert default.endswith("Z")
    listed = as_json("snapshot", "list", "--store", s)
    assert [(x["name"], x["files"], x["bytes"]) for x in listed] == [("first", 2, 7), (default, 2, 12)]
    table = out("snapshot", "list", "--store", s)
    assert table.splitlines()[0].split() == ["NAME", "TIME", "FILES", "BYTES"]
    run("snapshot", "delete", "--store", s, "first")
    assert [x["name"] for x in as_json("snapshot", "list", "--store", s)] == [default]
    fails(1, "snapshot", "delete", "--store", s, "first", match="no snapshot named 'first'")


@pytest.mark.parametrize("name", ["12", "a/b", "x@y", "2026-01-01", "2026-13-45", "-2h", "yesterday"])
def test_bad_names_exit_2(volume: Volume, name: str) -> None:
    fails(2, "snapshot", "create", "--store", volume.store, "--", name, match="snapshot name")


def test_names_are_utf8_text_and_raw_bytes_are_refused(volume: Volume) -> None:
    s = volume.store
    for raw in ("\udcff", "caf\udce9"):  # bytes that are not UTF-8, as a shell passes $'\xff'
        err = fails(2, "snapshot", "create", "--store", s, raw, match="is not valid UTF-8")
        assert err.count("\n") == 1, err
        fails(1, "snapshot", "delete", "--store", s, raw, match="no snapshot named")
    assert out("snapshot", "create", "--store", s, "café ☕").strip() == "café ☕"
    assert [x["name"] for x in as_json("snapshot", "list", "--store", s)] == ["café ☕"]


def test_existing_name_is_refused(volume: Volume) -> None:
    run("snapshot", "create", "--store", volume.store, "dup")
    fails(1, "snapshot", "create", "--store", volume.store, "dup", match="exists already")


@pytest.mark.fuse
def test_through_the_daemon_includes_a_file_still_open(mount: Mount) -> None:
    path = mount.path / "open.txt"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"written, not closed")
        # The store is locked by the daemon: this works only through its control socket.
        assert out("snapshot", "create", "--mount", mount.path, "while-open").strip() == "while-open"
        assert run("cat", f"{path}@while-open").stdout == b"written, not closed"
    finally:
        os.close(fd)
    assert [(x["name"], x["files"], x["bytes"]) for x in as_json("snapshot", "list", "--store", mount.store)] == [
        ("while-open", 1, 19)]
    fails(2, "snapshot", "create", "--mount", mount.path, "a@b", match="must not contain")
    fails(1, "snapshot", "create", "--store", mount.store, "while-open", match="exists already")
    run("snapshot", "delete", "--mount", mount.path, "while-open")
    assert as_json("snapshot", "list", "--mount", mount.path) == []
