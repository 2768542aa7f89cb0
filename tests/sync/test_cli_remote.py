"""`vfs remote set` to another prefix, `remote show` and `status` from inside a mount, against moto."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuse.conftest import new_mount
from tests.s3_server import SECRET_KEY
from tests.sync.conftest import assert_same_volume, init_flags
from tests.sync.test_cli import remote_args, vfs, write_files
from vfs.config import RemoteConfig
from vfs.repository import Repository

pytestmark = pytest.mark.s3
VFS = [sys.executable, "-m", "vfs.cli.main"]


def other_prefix(remote: RemoteConfig) -> str:
    """Another prefix of the same bucket (s3://BUCKET/moved)."""
    return f"s3://{remote.url.removeprefix('s3://').split('/')[0]}/moved"


def test_remote_set_to_a_new_prefix_uploads_everything_there(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    vfs("init", store, *remote_args(remote), *init_flags())
    write_files(store, {f"f{i}": os.urandom(200_000) for i in range(4)})
    vfs("snapshot", "create", "one", "--store", store)
    vfs("sync", "--wait", "--store", store)
    write_files(store, {"f0": b"changed after the first sync", "g": os.urandom(50_000)})
    vfs("sync", "--wait", "--store", store)
    moved = other_prefix(remote)
    done = vfs("remote", "set", store, moved, "--endpoint-url", str(remote.endpoint_url), "--json")
    answer = json.loads(done.stdout)
    assert answer["url"] == moved and answer["previous_url"] == remote.url and answer["sync_state_reset"], answer
    with Repository.open(store, lock=False) as repo:
        assert repo.catalog.remote_packs() == {} and not (store / "sync").exists()
    write_files(store, {"h": b"after the move"})
    vfs("sync", "--wait", "--store", store)
    copy = tmp_path / "b"
    vfs("clone", moved, copy, "--endpoint-url", str(remote.endpoint_url))
    with Repository.open(store, lock=False) as a, Repository.open(copy, lock=False) as b:
        assert_same_volume(a, b)


def test_remote_set_fetches_evicted_packs_first(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    vfs("init", store, *remote_args(remote), *init_flags())
    files = {f"f{i}": os.urandom(300_000) for i in range(3)}
    write_files(store, files)
    vfs("sync", "--wait", "--store", store)
    with Repository.open(store) as repo:
        uploaded = list(repo.catalog.remote_packs())
        for pack in uploaded:
            repo.chunks.evict_pack(pack)  # as the cache limit does: safe on the remote
    assert uploaded
    moved = other_prefix(remote)
    done = vfs("remote", "set", store, moved, "--endpoint-url", str(remote.endpoint_url), check=False)
    assert done.returncode == 2 and "--fetch" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    with Repository.open(store, lock=False) as repo:
        assert repo.remote is not None and repo.remote.url == remote.url  # unchanged
    vfs("remote", "set", store, moved, "--endpoint-url", str(remote.endpoint_url), "--fetch")
    vfs("sync", "--wait", "--store", store)
    copy = tmp_path / "b"
    vfs("clone", moved, copy, "--endpoint-url", str(remote.endpoint_url))
    with Repository.open(store, lock=False) as a, Repository.open(copy, lock=False) as b:
        assert_same_volume(a, b)


@pytest.mark.fuse
def test_status_and_remote_show_inside_a_mount_name_its_store(tmp_path: Path, remote: RemoteConfig) -> None:
    other = tmp_path / "default-store"
    vfs("init", other)
    env = {**os.environ, "VFS_HOME": str(other)}
    with new_mount(tmp_path, *remote_args(remote)) as m:
        (m.path / "d").mkdir()

        def run_here(*args: str) -> str:
            done = subprocess.run([*VFS, *args], cwd=m.path / "d", env=env, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0, (args, done.stderr)
            assert SECRET_KEY not in done.stdout + done.stderr
            return done.stdout

        st = json.loads(run_here("status", "--json"))
        assert st["mounted"] is True and st["remote"] == remote.url
        shown = json.loads(run_here("remote", "show", "--json"))
        assert shown["store"] == str(m.store) and shown["url"] == remote.url
        assert shown["endpoint_url"] == remote.endpoint_url
        (m.path / "d" / "f").write_bytes(b"data")
        run_here("sync", "--wait")
        assert json.loads(run_here("status", "--json"))["backlog_objects"] == 0
