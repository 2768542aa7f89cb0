"""What the commands print, through the real CLI with stdout and stderr on pipes (no terminal, as in a
cron job or a notebook): progress lines on stderr every $VFS_PROGRESS_INTERVAL seconds, none with
--quiet, and nothing but JSON on stdout with --json; the terminal bar where stderr is a terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.backend.faultproxy import FaultProxy
from tests.fuse.conftest import Mount
from tests.s3_server import SECRET_KEY
from tests.sync.conftest import SMALL_PACKS, encrypted, make_store, proxy, remote  # noqa: F401
from vfs.config import RemoteConfig
from vfs.repository import Repository
from vfs.types import ROOT_INO

VFS = [sys.executable, "-m", "vfs.cli.main"]
FAST = {"VFS_PROGRESS_INTERVAL": "0.05"}
# `clone: 1.0/4.0 MiB (25%), 1/4 objects, 2.0 MiB/s, 0.5s`
LINE = re.compile(r"^(\w+): [\d,.]+/[\d,.]+ MiB \(\d+%\), (\d+)/(\d+) objects, [\d,.]+ MiB/s, [\d.]+s$")


def vfs(*args: str | Path, env: dict[str, str] | None = None, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*VFS, *map(str, args)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})
    assert done.returncode == code, (args, done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and SECRET_KEY not in done.stdout + done.stderr
    return done


def progress_lines(stderr: str, label: str) -> list[re.Match[str]]:
    """The progress lines of `stderr`, which must hold nothing else, each of them labelled `label`."""
    found = [LINE.match(line) for line in stderr.splitlines()]
    assert found and all(m is not None and m[1] == label for m in found), stderr
    return [m for m in found if m is not None]


def assert_progress(stderr: str, label: str) -> None:
    """Several lines (the work took many intervals), the last one saying that every object is done."""
    lines = progress_lines(stderr, label)
    assert len(lines) >= 2, stderr
    assert lines[-1][2] == lines[-1][3] and int(lines[-1][3]) > 0, stderr


def slow(proxy: FaultProxy) -> None:  # noqa: F811
    """Each request answered after a pause: the work takes many progress intervals."""
    proxy.rate, proxy.kinds, proxy.delay = 1.0, ("delay",), (0.2, 0.3)


def filled_store(path: Path, remote: RemoteConfig) -> None:  # noqa: F811
    """A store of 1 MiB packs holding 6 MiB of random data (several objects to upload), synced to nothing yet."""
    with make_store(path, remote, SMALL_PACKS) as repo:
        for i in range(12):
            repo.commit_bytes(repo.catalog.create(ROOT_INO, f"f{i}".encode(), 0o100644, 0, 0).ino,
                              os.urandom(512 * 1024))


def remote_args(remote: RemoteConfig) -> tuple[str, ...]:  # noqa: F811
    return ("--endpoint-url", str(remote.endpoint_url))


@pytest.mark.s3
def test_sync_clone_fetch_show_progress_lines_and_print_json(tmp_path: Path, remote: RemoteConfig,  # noqa: F811
                                                             proxy: FaultProxy) -> None:  # noqa: F811
    store = tmp_path / "a"
    filled_store(store, remote)
    slow(proxy)
    done = vfs("sync", "--wait", "--store", store, "--json", env=FAST)
    assert_progress(done.stderr, "sync")
    answer: dict[str, Any] = json.loads(done.stdout)
    assert answer["synced"] is True and answer["backlog_objects"] == 0 and answer["remote"] == remote.url

    copy = tmp_path / "b"
    done = vfs("clone", remote.url, copy, *remote_args(remote), "--json", env=FAST)
    assert_progress(done.stderr, "clone")
    answer = json.loads(done.stdout)
    assert answer["store"] == str(copy) and answer["lazy"] is False and answer["url"] == remote.url
    assert answer["bytes_fetched"] >= 4 << 20 and answer["objects_fetched"] >= 4

    lazy = tmp_path / "c"
    done = vfs("clone", remote.url, lazy, "--lazy", *remote_args(remote), "--json", env=FAST)
    assert done.stderr == ""  # nothing downloaded: no progress
    assert json.loads(done.stdout)["lazy"] is True
    done = vfs("fetch", "--store", lazy, "/", "--json", env=FAST)
    assert_progress(done.stderr, "fetch")
    assert json.loads(done.stdout) == {"bytes_fetched": answer["bytes_fetched"],
                                       "objects_fetched": answer["objects_fetched"], "stores_without_remote": []}


@pytest.mark.s3
def test_quiet_shows_no_progress_and_short_work_shows_none_by_default(tmp_path: Path,
                                                                      remote: RemoteConfig,  # noqa: F811
                                                                      proxy: FaultProxy) -> None:  # noqa: F811
    store = tmp_path / "a"
    filled_store(store, remote)
    slow(proxy)
    assert vfs("sync", "--wait", "--store", store, "--quiet", env=FAST).stderr == ""
    copy = tmp_path / "b"
    done = vfs("clone", remote.url, copy, *remote_args(remote), "-q", env=FAST)
    assert done.stderr == "" and done.stdout == f"cloned {remote.url} into {copy}\n"
    lazy = tmp_path / "c"
    vfs("clone", remote.url, lazy, "--lazy", *remote_args(remote))
    done = vfs("fetch", "--store", lazy, "/", "--quiet", env=FAST)
    assert done.stderr == "" and done.stdout.startswith("fetched ")
    # The default interval is 5 s: work that ends sooner prints no progress (a cron job stays quiet).
    proxy.rate = 0.0
    done = vfs("clone", remote.url, tmp_path / "d", *remote_args(remote))
    assert done.stderr == ""


@pytest.mark.s3
@pytest.mark.fuse
def test_sync_through_the_daemon_shows_progress_and_prints_json(tmp_path: Path, remote: RemoteConfig,  # noqa: F811
                                                                proxy: FaultProxy) -> None:  # noqa: F811
    store, mnt = tmp_path / "a", tmp_path / "mnt"
    make_store(store, remote, SMALL_PACKS).close()
    mnt.mkdir()
    slow(proxy)
    proxy.status = 503  # the daemon's uploader sends nothing before the sync is asked for
    m = Mount(store, mnt)
    m.start()
    try:
        for i in range(12):
            (mnt / f"f{i}").write_bytes(os.urandom(512 * 1024))
        sync = subprocess.Popen([*VFS, "sync", "--wait", "--mount", str(mnt), "--json"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **FAST})
        assert sync.stderr is not None
        first = sync.stderr.readline()  # the daemon has answered the request: the whole backlog is left
        proxy.status = None
        out, rest = sync.communicate(timeout=180)
        assert sync.returncode == 0, first + rest
        assert_progress(first + rest, "sync")
        answer = json.loads(out)
        assert answer["synced"] is True and answer["backlog_objects"] == 0 and answer["target"] >= 1
        done = vfs("sync", "--mount", mnt, "--json", env=FAST)  # without --wait: the round just asked for
        assert {"target", "synced", "backlog_bytes"} <= json.loads(done.stdout).keys() and done.stderr == ""
    finally:
        m.cleanup()


def test_init_and_snapshot_create_print_json(tmp_path: Path) -> None:
    store = tmp_path / "s"
    done = vfs("init", store, "--json")
    assert json.loads(done.stdout) == {"store": str(store), "remote": None, "endpoint_url": None, "encrypted": False}
    assert done.stderr == ""
    done = vfs("snapshot", "create", "--store", store, "first", "--json")
    assert json.loads(done.stdout) == {"name": "first"} and done.stderr == ""


@pytest.mark.s3
def test_a_bad_progress_interval_is_one_line_before_anything_is_written(tmp_path: Path,
                                                                       remote: RemoteConfig) -> None:  # noqa: F811
    filled_store(tmp_path / "a", remote)
    vfs("sync", "--wait", "--store", tmp_path / "a")
    for value in ("abc", "0", "-1", "nan", "inf"):
        done = vfs("clone", remote.url, tmp_path / "c", *remote_args(remote), env={"VFS_PROGRESS_INTERVAL": value},
                   code=2)
        assert done.stderr == f"vfs: error: VFS_PROGRESS_INTERVAL must be a positive number of seconds, not {value!r}\n"
        assert not (tmp_path / "c").exists()


def test_fsck_quiet_and_the_terminal_bar(tmp_path: Path) -> None:
    """On a terminal the bar is redrawn in place (carriage returns) and ends its line; --quiet hides it."""
    store = tmp_path / "s"
    vfs("init", store)
    with Repository.open(store) as repo:
        repo.commit_bytes(repo.catalog.create(ROOT_INO, b"f", 0o100644, 0, 0).ino, os.urandom(3 << 20))
    shown = on_terminal("fsck", store, "--read-data")
    assert "\rfsck: [" in shown and "100%" in shown and shown.endswith("\n"), shown
    assert on_terminal("fsck", store, "--read-data", "--quiet") == ""


def on_terminal(*args: str | Path) -> str:
    """What `vfs ARGS` writes to stderr when stderr is a terminal (stdout on a pipe)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*VFS, *map(str, args)], stdout=subprocess.PIPE, stderr=slave,
                                env={**os.environ, **FAST})
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    finally:
        os.close(master)
    return b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal turns \n into \r\n
