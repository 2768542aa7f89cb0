"""Finding the volume: commands run inside a mount act on it; `vfs mount` without a store says when it
creates the default one; fsck --mount; --version; remote show and unset; snapshot names."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import VFS, Mount, Volume, fails, out, run
from tests.fuse.conftest import is_mounted
from vfs.config import RemoteConfig
from vfs.repository import Repository
from vfs.types import PackNo


def vfs_in(cwd: Path, *args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `vfs ARGS` in directory `cwd` (with `env` added to the environment)."""
    return subprocess.run([*VFS, *map(str, args)], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def ok_in(cwd: Path, *args: str | Path, env: dict[str, str] | None = None) -> str:
    done = vfs_in(cwd, *args, env=env)
    assert done.returncode == 0, (args, done.returncode, done.stderr)
    return done.stdout


def one_line_error(done: subprocess.CompletedProcess[str], code: int, match: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("vfs: error: ") and match in done.stderr, done.stderr


@pytest.fixture
def other_default(tmp_path: Path) -> dict[str, str]:
    """$VFS_HOME naming another, existing store: a command that falls back to the default acts there."""
    store = tmp_path / "default-store"
    Repository.init(store).close()
    return {"VFS_HOME": str(store)}


@pytest.mark.fuse
def test_commands_without_a_path_act_on_the_mount_holding_the_current_directory(
        mount: Mount, other_default: dict[str, str]) -> None:
    sub = mount.path / "sub"
    sub.mkdir()
    (sub / "f").write_bytes(b"first")
    assert ok_in(sub, "snapshot", "create", "x", env=other_default).strip() == "x"
    assert [s["name"] for s in json.loads(ok_in(sub, "snapshot", "list", "--json", env=other_default))] == ["x"]
    assert json.loads(out("snapshot", "list", "--json", "--store", other_default["VFS_HOME"])) == []
    (sub / "g").write_bytes(b"second")
    assert [line for line in ok_in(sub, "diff", "x", env=other_default).splitlines() if line.startswith("+")] == [
        "+ sub/g"]
    log = json.loads(ok_in(sub, "log", "f", "--json", env=other_default))
    digest = log["versions"][0]["hash"][:16]
    assert ok_in(sub, "cat", f"blake3:{digest}", env=other_default) == "first"
    assert json.loads(ok_in(sub, "fsck", "--json", env=other_default))["chunks"] >= 1
    assert json.loads(ok_in(sub, "remote", "show", "--json", env=other_default))["store"] == str(mount.store)
    # Explicit choices still win over the current directory.
    assert json.loads(ok_in(sub, "snapshot", "list", "--json", "--store", other_default["VFS_HOME"])) == []


@pytest.mark.fuse
def test_fsck_takes_mount(mount: Mount, tmp_path: Path) -> None:
    """And checks what was written before it ran: here only in a file still open, which nothing else
    would commit for minutes (the version interval)."""
    fd = os.open(mount.path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"data")
        os.fsync(fd)  # the daemon has it now
        report = json.loads(ok_in(tmp_path, "fsck", "--mount", mount.path, "--json"))
    finally:
        os.close(fd)
    assert report["damaged"] == 0 and report["chunks"] >= 1
    one_line_error(vfs_in(tmp_path, "fsck", "--mount", tmp_path), 2, "is not a vfs mount point")


@pytest.mark.fuse
def test_mount_without_a_store_says_it_creates_the_default_one(tmp_path: Path) -> None:
    home = tmp_path / "home" / "default"
    env = {"VFS_HOME": str(home)}
    one_line_error(vfs_in(tmp_path, "mount", tmp_path / "missing", env=env), 2, "does not exist")
    assert not home.exists()  # a wrong mount point creates nothing
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    m = Mount(home, mnt)
    try:
        done = vfs_in(tmp_path, "mount", mnt, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == f"vfs: created store {home}\n"
        assert is_mounted(mnt)
        m.stop()
        done = vfs_in(tmp_path, "mount", mnt, env=env)
        assert done.returncode == 0 and done.stderr == "", done.stderr  # it exists now: nothing to say
        m.stop()
    finally:
        m.cleanup()
    assert "vfs: created store PATH" in " ".join(out("mount", "--help").split())


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    assert ok_in(tmp_path, "--version") == f"vfs {importlib.metadata.version('vfs')}\n"


@pytest.mark.parametrize("name", ["a\nb", "a\tb", "bell\x07", "esc\x1b[31m", "del\x7f", "\x1f"])
def test_snapshot_names_with_control_characters_are_refused(volume: Volume, name: str) -> None:
    err = fails(2, "snapshot", "create", "--store", volume.store, "--", name, match="control characters")
    assert err.count("\n") == 1, err
    assert json.loads(out("snapshot", "list", "--json", "--store", volume.store)) == []


def _set_remote(store: Path, remote: RemoteConfig, cache_size: int | None = None) -> None:
    """As `vfs remote set` leaves it, without reaching the endpoint (these tests never talk to it)."""
    with Repository.open(store) as repo:
        repo.catalog.set_meta("remote", remote.to_json())
        if cache_size is not None:
            repo.catalog.set_meta("cache_size", str(cache_size))


def test_remote_show_prints_the_settings_and_never_a_credential(volume: Volume, tmp_path: Path) -> None:
    s = volume.store
    assert out("remote", "show", s) == "no remote\n"
    assert json.loads(out("remote", "show", s, "--json"))["url"] is None
    _set_remote(s, RemoteConfig("s3://bkt/vol", "http://AKIDEXAMPLE:wJalrXUtnFEMI@127.0.0.1:9", "eu-west-3"), 10 << 30)
    shown = json.loads(out("remote", "show", s, "--json"))
    assert shown == {"store": str(s), "url": "s3://bkt/vol", "endpoint_url": "http://***@127.0.0.1:9",
                     "region": "eu-west-3", "cache_size": 10 << 30}
    text = out("remote", "show", s)
    assert "s3://bkt/vol" in text and "eu-west-3" in text and str(10 << 30) in text
    assert "wJalrXUtnFEMI" not in text and "AKIDEXAMPLE" not in text
    env = {"VFS_HOME": str(s)}
    assert json.loads(ok_in(tmp_path, "remote", "show", "--json", env=env))["url"] == "s3://bkt/vol"


def test_remote_unset_forgets_the_sync_state_and_keeps_the_data(volume: Volume) -> None:
    s = volume.store
    volume.write("f", b"data")
    _set_remote(s, RemoteConfig("s3://bkt/vol", "http://127.0.0.1:9"), 1 << 20)
    with Repository.open(s) as repo:
        pack = max(repo.chunks.local_packs())
        repo.catalog.add_remote_pack(PackNo(pack), "packs/00", 10)
    (s / "sync").mkdir()
    (s / "sync" / "checkpoint.json").write_text("{}")
    (s / "sync" / "failure.json").write_text("{}")
    assert "removed" in out("remote", "unset", s)
    with Repository.open(s) as repo:
        assert repo.remote is None and repo.catalog.remote_packs() == {}
        assert repo.catalog.meta_or_none("cache_size") is None
    assert not (s / "sync").exists()
    assert out("cat", "--store", s, "f") == "data"
    assert out("remote", "unset", s) == f"{s} has no remote\n"
    assert json.loads(out("remote", "unset", s, "--json")) == {"store": str(s), "removed_url": None}


def test_remote_unset_refuses_while_packs_are_only_in_the_remote(volume: Volume) -> None:
    s = volume.store
    volume.write("f", b"data")
    _set_remote(s, RemoteConfig("s3://bkt/vol", "http://127.0.0.1:9"))
    with Repository.open(s) as repo:
        pack = max(repo.chunks.local_packs())
        repo.catalog.add_remote_pack(PackNo(pack), "packs/00", 10)
        repo.chunks.pack_file(pack).unlink()  # evicted: only the remote has it
    err = fails(2, "remote", "unset", s, match="only in s3://bkt/vol")
    assert "--fetch" in err and err.count("\n") == 1
    with Repository.open(s, lock=False) as repo:  # nothing changed
        assert repo.remote is not None and repo.remote.url == "s3://bkt/vol" and repo.catalog.remote_packs()


@pytest.mark.fuse
def test_remote_unset_refuses_a_mounted_store(mount: Mount) -> None:
    done = run("remote", "unset", mount.store, check=False)
    err = done.stderr.decode()
    assert done.returncode == 4 and "unmount it first" in err and err.count("\n") == 1 and "Traceback" not in err


def store_commands() -> list[tuple[str, ...]]:
    """Every command (with its subcommand) whose parser takes a store (--store or a STORE argument)."""
    import argparse

    from vfs.cli.main import build_parser

    def walk(p: argparse.ArgumentParser, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            return [c for name, sp in subs[0].choices.items() for c in walk(sp, (*path, name))]
        return [path] if any(a.dest == "store" for a in p._actions) else []

    return walk(build_parser(), ())


# Commands that name the store they act on, never the current directory's: they create one (init,
# clone) or change a store's remote, which only an unmounted store may do.
NAMED_STORE_ONLY = {("init",), ("clone",), ("remote", "set"), ("remote", "unset")}


@pytest.mark.fuse
def test_every_store_command_finds_the_mount_holding_the_current_directory(mount: Mount, tmp_path: Path) -> None:
    """Run from a subdirectory of a mount, with the default store missing: each command acts on the
    mount's store (it succeeds, or its error names that store), never on the default."""
    sub = mount.path / "sub"
    sub.mkdir()
    (sub / "f").write_bytes(b"first")
    (sub / "f").write_bytes(b"second")
    local = tmp_path / "local.txt"
    local.write_text("local")
    default = tmp_path / "no-default-store"
    env = {"VFS_HOME": str(default)}
    runs: list[tuple[tuple[str, ...], tuple[str | Path, ...]]] = [
        (("snapshot", "create"), ("s1",)),
        (("snapshot", "list"), ()),
        (("log",), ("f",)),
        (("ls",), ("-l",)),
        (("put",), (local, "h")),
        (("get",), ("f@1", tmp_path / "f1")),
        (("cat",), ("h",)),
        (("diff",), ("s1",)),
        (("restore",), ("f@1",)),
        (("status",), ()),
        (("sync",), ()),
        (("fetch",), ("f",)),
        (("pull",), ()),
        (("remote", "show"), ()),
        (("lease", "status"), ()),
        (("lease", "take"), ()),
        (("lease", "release"), ()),
        (("prune",), ("--keep-last", "1", "--dry-run")),
        (("gc",), ()),
        (("fsck",), ()),
        (("key", "list"), ()),
        (("key", "add"), ()),
        (("key", "passwd"), ()),
        (("key", "remove"), ("0",)),
        (("snapshot", "delete"), ("s1",)),
    ]
    assert {c for c, _ in runs} == set(store_commands()) - NAMED_STORE_ONLY  # a new command belongs here
    for command, args in runs:
        done = vfs_in(sub, *command, *args, env=env)
        said = done.stdout + done.stderr
        assert "Traceback" not in said and str(default) not in said, (command, said)
        assert done.returncode == 0 or str(mount.store) in done.stderr, (command, done.returncode, said)
    assert (tmp_path / "f1").read_bytes() == b"first"
    assert (sub / "h").read_text() == "local" and (sub / "f").read_bytes() == b"first"
    assert not (mount.path / ".snapshots" / "s1").exists() and not default.exists()
