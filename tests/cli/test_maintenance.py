"""The backup script from cron's point of view, and prune, gc and fsck through the real CLI."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.cli.conftest import Volume, fails, out, run
from tests.fuse.conftest import Mount
from vfs.repository import Repository
from vfs.store.packs import ENTRY, pack_path

BACKUP = Path(__file__).parents[2] / "scripts" / "vfs-backup"


def backup(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    vfs = Path(sys.executable).with_name("vfs")
    return subprocess.run([str(BACKUP), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VFS": str(vfs), **(env or {})})


@pytest.mark.fuse
def test_backup_three_times_then_prune_gc_fsck(mount: Mount, tmp_path: Path) -> None:
    mnt = mount.path
    contents = []
    for i in range(3):
        (mnt / "a.txt").write_bytes(os.urandom(200_000))
        (mnt / f"only{i}").write_bytes(os.urandom(50_000))
        if i:
            (mnt / f"only{i - 1}").unlink()
        contents.append({p.name: p.read_bytes() for p in mnt.iterdir()})
        done = backup("--mount", mnt)
        assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
    snaps = json.loads(out("snapshot", "list", "--mount", mnt, "--json"))
    assert len(snaps) == 3
    done = backup("--mount", mnt, "--keep-last", "3", "--keep-versions-within", "0s")
    assert done.returncode == 0, done.stderr
    kept = [s["name"] for s in json.loads(out("snapshot", "list", "--mount", mnt, "--json"))]
    assert len(kept) == 3  # the fourth run's own snapshot and the two before it
    gc = json.loads(out("gc", "--mount", mnt, "--json"))
    assert gc["chunks_deleted"] > 0
    mount.stop()
    report = json.loads(run("fsck", mount.store, "--read-data", "--json").stdout)
    assert report["ok"] and report["problems"] == [] and report["chunks_read"] == report["chunks"]
    for name, files in zip(kept[:2], contents[1:], strict=True):
        for fname, data in files.items():
            assert run("cat", "--store", mount.store, f"{fname}@{name}").stdout == data


def test_backup_lock_failure_codes_and_quiet(volume: Volume, tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    env = {"VFS_BACKUP_LOCK": str(lock)}
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        done = backup("--store", volume.store, env=env)
        assert done.returncode == 10 and "another run" in done.stderr
    done = backup("--store", tmp_path / "nothing", env=env)
    assert done.returncode == 20 and done.stderr.startswith("vfs-backup: snapshot failed")
    done = backup("--store", volume.store, "--keep-daily", "x", env=env)
    assert done.returncode == 40 and "prune failed" in done.stderr
    assert backup("--bogus").returncode == 2
    done = backup("--store", volume.store, "--keep-last", "1", env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_backup_runs_in_a_second_that_has_a_snapshot_both_succeed(volume: Volume) -> None:
    # Every second of the next ten minutes has a default-named snapshot already, so each run meets a
    # taken name, as two runs within one second do (they failed with "exists already", exit 20).
    start = int(time.time())
    with Repository.open(volume.store) as repo:
        for k in range(600):
            repo.catalog.create_snapshot(datetime.fromtimestamp(start + k, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    contents = []
    for _ in range(2):
        contents.append(os.urandom(30_000))
        volume.write("f", contents[-1])
        done = backup("--store", volume.store)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    names = [s["name"] for s in json.loads(out("snapshot", "list", "--store", volume.store, "--json"))][600:]
    assert len(set(names)) == 2
    for name, data in zip(names, contents, strict=True):
        assert run("cat", "--store", volume.store, f"f@{name}").stdout == data


def test_prune_gc_fsck_on_an_unmounted_store(volume: Volume) -> None:
    for i in range(3):
        volume.write("f", os.urandom(30_000))
        run("snapshot", "create", f"s{i}", "--store", volume.store)
    fails(2, "prune", "--store", volume.store, match="no policy")
    dry = json.loads(out("prune", "--store", volume.store, "--keep-last", "1", "--keep-versions-within", "0s",
                         "--dry-run", "--json"))
    assert dry["forget"] == ["s1", "s0"] and dry["versions"] == 2
    assert len(json.loads(out("snapshot", "list", "--store", volume.store, "--json"))) == 3
    text = out("prune", "--store", volume.store, "--keep-last", "1", "--keep-versions-within", "0s")
    assert "forget  s0" in text and "pruned 2 version(s)" in text
    assert "freed" in out("gc", "--store", volume.store)
    assert json.loads(run("fsck", volume.store, "--read-data", "--json").stdout)["ok"]
    with Repository.open(volume.store) as repo:
        loc = repo.catalog.chunk_locations()[0]
    with open(pack_path(volume.store / "packs", loc.pack), "r+b") as f:
        f.seek(loc.offset + ENTRY.size + 5)
        b = f.read(1)
        f.seek(loc.offset + ENTRY.size + 5)
        f.write(bytes([b[0] ^ 1]))
    assert run("fsck", volume.store, check=False).returncode == 0  # headers intact
    done = run("fsck", volume.store, "--read-data", "--repair", check=False)
    assert done.returncode == 1 and b"needs the remote" in done.stderr
    volume.write("f", b"fixed")  # the damaged chunk is no longer the latest; prune + gc drop it
    run("snapshot", "delete", "s2", "--store", volume.store)
    run("prune", "--store", volume.store, "--keep-versions-within", "0s")
    run("gc", "--store", volume.store)
    assert run("fsck", volume.store, "--read-data", check=False).returncode == 0
    volume.check = lambda: None  # type: ignore[method-assign]  # checked by fsck above
