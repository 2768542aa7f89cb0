"""The remote half of issue 6: fsck --remote (finds and repairs damage in the bucket and locally from
the bucket) and gc in the bucket (reverse write ordering, a kill at any point loses nothing)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from tests.kill import kill_after_ready
from tests.maintenance.helpers import flip_byte
from tests.s3_server import SECRET_KEY
from tests.sync.conftest import assert_same_volume, backend_of, fill, init_flags, make_store, write
from vfs.backend import Backend
from vfs.compose import open_repository
from vfs.config import RemoteConfig
from vfs.maintenance import fsck, gc, prune
from vfs.maintenance import remote as rmaint
from vfs.maintenance.retention import Policy
from vfs.maintenance.service import Maintenance
from vfs.repository import Repository
from vfs.store.packs import ENTRY
from vfs.sync import layout
from vfs.sync.clone import clone
from vfs.sync.remote import sealed_for
from vfs.sync.uploader import open_uploader

pytestmark = pytest.mark.s3
VFS = [sys.executable, "-m", "vfs.cli.main"]
FAR_FUTURE = 2**62


def sync(repo: Repository) -> None:
    uploader = open_uploader(repo, max_pause=1.0)
    try:
        trio.run(uploader.round)
    finally:
        uploader.backend.close()


def collect_remote(repo: Repository, *, dry_run: bool = False) -> rmaint.RemoteGcResult:
    """Remote gc of the unmounted store `repo` (what `vfs gc` runs after the local part)."""
    return trio.run(lambda: Maintenance(repo).gc_remote(dry_run=dry_run))


def full_check(repo: Repository, backend: Backend, *, read_data: bool = True) -> fsck.Report:
    report = fsck.check(repo, read_data=read_data, remote_only=rmaint.remote_only(repo))
    report.remote = rmaint.check_remote(repo, backend, report, read_data=read_data).as_json()
    return report


def kinds(report: fsck.Report) -> list[str]:
    return sorted(p.kind for p in report.problems)


def vfs(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*VFS, *map(str, args)], capture_output=True, text=True, timeout=180)
    assert SECRET_KEY not in done.stdout + done.stderr
    return done


def build(store: Path, remote_cfg: RemoteConfig) -> dict[str, bytes]:
    """A synced store with several packs, some of them garbage once old versions are pruned."""
    repo = make_store(store, remote_cfg)
    with repo:
        files = fill(repo, 40, 200_000, seed=3)
        sync(repo)
        for name in list(files)[:20]:  # new content: the old versions become prunable
            files[name] = os.urandom(120_000)
            write(repo, name, files[name])
        sync(repo)
    return files


def test_fsck_remote_finds_and_repairs_damage_on_both_sides(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    build(store, remote)
    backend = backend_of(remote)
    with Repository.open(store) as repo:
        report = full_check(repo, backend)
        assert report.problems == [] and report.remote is not None
        assert report.remote["packs_read"] == report.remote["packs"] >= 5
        sampled = [rmaint.check_remote(repo, backend, fsck.Report(), read_data=True, subset=(n, 3)).packs_read
                   for n in (1, 2, 3)]
        assert sum(sampled) == report.remote["packs"]  # the slices cover every pack object once
        rows = sorted(repo.catalog.remote_packs().items())
        # an evicted pack (remote only) is expected, not damage
        evicted = rows[0][0]
        repo.chunks.evict_pack(evicted)
        assert full_check(repo, backend, read_data=False).problems == []
        # damage: a remote object deleted, one flipped, one truncated; a local chunk flipped
        (_, (k_deleted, _)), (_, (k_flipped, _)), (_, (k_cut, _)) = rows[1], rows[2], rows[3]
        backend.delete(k_deleted)
        data = bytearray(backend.get(k_flipped))
        data[len(data) // 2] ^= 0xFF
        backend.put(k_flipped, bytes(data))
        backend.put(k_cut, backend.get(k_cut)[:-100])
        loc = next(loc for loc in repo.catalog.chunk_locations() if loc.pack == rows[4][0])
        flip_byte(repo.chunks.pack_file(loc.pack), loc.offset + ENTRY.size + 5)
    done = vfs("fsck", store, "--read-data", "--remote", "--json")
    assert done.returncode == 1, done.stderr
    with Repository.open(store) as repo:
        report = full_check(repo, backend)
        assert kinds(report) == ["corrupt", "remote-corrupt", "remote-missing", "remote-size"], report.problems
        without = fsck.check(repo, read_data=True, remote_only=rmaint.remote_only(repo))
        assert kinds(without) == ["corrupt"]  # the bucket is only looked at with --remote
    done = vfs("fsck", store, "--read-data", "--remote", "--repair")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    with Repository.open(store) as repo:
        assert full_check(repo, backend).problems == []
    copy = tmp_path / "copy"
    with clone(backend, remote, copy) as b, open_repository(store, lock=False) as a:  # a has an evicted pack
        assert_same_volume(a, b)
    backend.close()


def test_fsck_remote_checks_the_checkpoint_chain_and_repairs_it(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    build(store, remote)
    with Repository.open(store) as repo:
        backend = backend_of(remote, repo)
        chain = layout.unwrap_json(backend.get(layout.LATEST_KEY), layout.LATEST_KEY)["chain"]
        backend.delete(chain[0])
        assert kinds(full_check(repo, backend, read_data=False)) == ["remote-catalog"]
    done = vfs("fsck", store, "--remote", "--repair", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    with Repository.open(store) as repo:
        assert full_check(repo, backend).problems == []
    with clone(backend, remote, tmp_path / "copy") as b, Repository.open(store, lock=False) as a:
        assert_same_volume(a, b)
    backend.close()


def test_a_damaged_pointer_is_replaced_by_a_repair_only(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    build(store, remote)
    backend = backend_of(remote)
    backend.put(layout.LATEST_KEY, layout.wrap(b"not json"))
    with Repository.open(store) as repo:
        write(repo, "new", b"after the damage")
    # Whose pointer it was cannot be told: a sync does not write over it, and says what will.
    done = vfs("sync", "--wait", "--timeout", "5", "--store", store)
    assert done.returncode == 5 and "fsck --remote --repair" in done.stderr, done.stderr
    assert backend.get(layout.LATEST_KEY) == layout.wrap(b"not json")
    done = vfs("fsck", store, "--remote", "--repair")
    assert done.returncode == 0, done.stdout + done.stderr
    assert vfs("sync", "--wait", "--store", store).returncode == 0
    with clone(backend, remote, tmp_path / "copy") as b, Repository.open(store, lock=False) as a:
        assert_same_volume(a, b)
    backend.close()


def test_fsck_remote_errors_clearly_without_a_remote_or_an_endpoint(tmp_path: Path, remote: RemoteConfig,
                                                                    proxy: object) -> None:
    plain = tmp_path / "plain"
    Repository.init(plain).close()
    done = vfs("fsck", plain, "--remote")
    assert done.returncode == 2 and "has no remote" in done.stderr and "Traceback" not in done.stderr
    store = tmp_path / "a"
    make_store(store, RemoteConfig(remote.url, "http://127.0.0.1:9")).close()  # nothing listens there
    t0 = time.monotonic()
    done = vfs("fsck", store, "--remote")
    assert done.returncode == 5, done.stderr
    assert "cannot reach the remote" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - t0 < 60


def _prune_all_old(repo: Repository) -> None:
    prune.apply(repo.catalog, prune.plan(repo.catalog, Policy(versions_within_ns=0), now_ns=FAR_FUTURE))


def _objects(backend: Backend, prefix: str) -> set[str]:
    return set(backend.list(prefix))


def test_remote_gc_deletes_what_no_checkpoint_names(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    build(store, remote)
    backend = backend_of(remote)
    backend.put("packs/" + "ab" * 32, b"an orphan nothing names")
    with Repository.open(store) as repo:
        # a pack only the remote holds, whose chunks all become garbage, must go too
        repo.chunks.evict_pack(min(repo.catalog.remote_packs()))
        packs_before = _objects(backend, "packs/")
        catalog_before = _objects(backend, "catalog/")
        assert len(catalog_before) >= 3  # base, a delta, latest
        _prune_all_old(repo)
        local = gc.collect(repo)
        assert local.packs_deleted or local.packs_repacked
        dry = collect_remote(repo, dry_run=True)
        assert dry.packs_forgotten and _objects(backend, "packs/") == packs_before
        result = collect_remote(repo)
        assert result.packs_forgotten == dry.packs_forgotten
        assert result.pack_objects_deleted >= len(result.packs_forgotten) + 1  # and the orphan
        assert result.catalog_objects_deleted >= 1 and result.bytes_freed > 0
        after = _objects(backend, "packs/")
        assert "packs/" + "ab" * 32 not in after
        assert after == {k for k, _ in repo.catalog.remote_packs().values()}
        pointer = layout.unwrap_json(sealed_for(repo, backend).get(layout.LATEST_KEY), layout.LATEST_KEY)
        assert _objects(backend, "catalog/") == {layout.LATEST_KEY, *pointer["chain"]}
        assert full_check(repo, backend).problems == []
        again = collect_remote(repo)
        assert again.pack_objects_deleted == 0 and not again.packs_forgotten
    with clone(backend, remote, tmp_path / "copy") as b, Repository.open(store, lock=False) as a:
        assert_same_volume(a, b)
    backend.close()


CHILD = """
import os, random, sys, time
import trio
from vfs.maintenance import gc
from vfs.maintenance.service import Maintenance
from vfs.repository import Repository
rnd = random.Random(int(sys.argv[2]))
with Repository.open(sys.argv[1], passphrase=lambda: os.environ["VFS_PASSWORD"].encode()) as repo:
    gc.collect(repo)
    print("ready", flush=True)
    trio.run(lambda: Maintenance(repo).gc_remote(step=lambda what: time.sleep(rnd.random() * 0.05)))
print("done", flush=True)
"""


@pytest.mark.slow
def test_kill_during_remote_gc_loses_nothing(tmp_path: Path, remote: RemoteConfig) -> None:
    rnd = random.Random(6)
    killed = 0
    for attempt in range(5):
        cfg = RemoteConfig(remote.url + f"/k{attempt}", remote.endpoint_url)
        store = tmp_path / f"s{attempt}"
        build(store, cfg)
        backend = backend_of(cfg)
        backend.put("packs/" + "cd" * 32, b"orphan")
        with Repository.open(store) as repo:
            _prune_all_old(repo)
        child = [sys.executable, "-c", CHILD, str(store), str(attempt)]
        killed += kill_after_ready(child, rnd.random() * 0.6, cwd=Path(__file__).parents[2])
        with Repository.open(store) as repo:
            assert full_check(repo, backend).problems == []
        with clone(backend, cfg, tmp_path / f"c{attempt}") as b, Repository.open(store, lock=False) as a:
            assert_same_volume(a, b)
        with Repository.open(store) as repo:  # a later gc finishes the job
            collect_remote(repo)
            assert full_check(repo, backend).problems == []
            assert _objects(backend, "packs/") == {k for k, _ in repo.catalog.remote_packs().values()}
        with clone(backend, cfg, tmp_path / f"d{attempt}") as b, Repository.open(store, lock=False) as a:
            assert_same_volume(a, b)
        backend.close()
        shutil.rmtree(store)
    assert killed >= 2


BACKUP = Path(__file__).parents[2] / "scripts" / "vfs-backup"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _ok(*args: str | Path) -> str:
    done = vfs(*args)
    assert done.returncode == 0, f"vfs {args} exited {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.mark.fuse
@pytest.mark.slow
def test_done_means_backups_prune_gc_fsck_clone(tmp_path: Path, remote: RemoteConfig) -> None:
    """Issue 6's "done means": three backup runs through a mount with changes in between, prune, gc
    (locally and in the bucket), fsck --read-data --remote, and a clone holding every kept snapshot
    byte for byte and none of the pruned ones."""
    import json

    from tests.fuse.conftest import Mount

    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    _ok("init", store, "--remote", remote.url, "--endpoint-url", str(remote.endpoint_url), *init_flags())
    m = Mount(store, mnt)
    m.start()
    env = {**os.environ, "VFS": str(Path(sys.executable).with_name("vfs"))}
    snapshots: dict[str, dict[str, bytes]] = {}
    try:
        rng = random.Random(7)
        (mnt / "docs").mkdir()
        for i in range(3):
            (mnt / f"big{i}").write_bytes(rng.randbytes(3_000_000))
            if i:
                (mnt / f"big{i - 1}").unlink()
            (mnt / "docs" / "notes.txt").write_text(f"run {i}\n" * (i + 1))
            (mnt / "docs" / f"small{i}").write_bytes(rng.randbytes(20_000))
            t0 = time.monotonic()
            done = subprocess.run([str(BACKUP), "--mount", str(mnt)], capture_output=True, text=True, timeout=120,
                                  env=env)
            assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr
            print(f"backup run {i}: {time.monotonic() - t0:.2f}s")
            names = [s["name"] for s in json.loads(_ok("snapshot", "list", "--mount", mnt, "--json"))]
            new = [n for n in names if n not in snapshots]
            assert len(new) == 1
            snapshots[new[0]] = _tree(mnt)
            st = json.loads(_ok("status", "--mount", mnt, "--json"))
            assert st["backlog_objects"] == 0 and st["error"] is None, st
        order = list(snapshots)
        pruned = json.loads(_ok("prune", "--mount", mnt, "--keep-last", "2", "--keep-versions-within", "0s",
                                "--json"))
        assert pruned["forget"] == [order[0]]
        t0 = time.monotonic()
        gc_answer = json.loads(_ok("gc", "--mount", mnt, "--json"))
        print(f"gc: {time.monotonic() - t0:.2f}s, local {gc_answer['bytes_freed']} bytes freed,"
              f" remote {gc_answer['remote']}")
        assert "remote_error" not in gc_answer, gc_answer
        assert gc_answer["bytes_freed"] > 2_000_000
        assert gc_answer["remote"]["bytes_freed"] > 2_000_000 and gc_answer["remote"]["pack_objects_deleted"] >= 1
        t0 = time.monotonic()
        report = json.loads(_ok("fsck", store, "--read-data", "--remote", "--json"))  # while mounted
        print(f"fsck --read-data --remote: {time.monotonic() - t0:.2f}s")
        assert report["ok"] and report["problems"] == [] and report["remote"]["packs_read"] >= 1, report
        m.stop()
    finally:
        m.cleanup()
    report = json.loads(_ok("fsck", store, "--read-data", "--remote", "--json"))
    assert report["ok"] and report["problems"] == [], report
    copy, cmnt = tmp_path / "copy", tmp_path / "cmnt"
    cmnt.mkdir()
    _ok("clone", remote.url, copy, "--endpoint-url", str(remote.endpoint_url))
    names = [s["name"] for s in json.loads(_ok("snapshot", "list", "--store", copy, "--json"))]
    assert names == order[1:]
    c = Mount(copy, cmnt)
    c.start()
    try:
        for name in order[1:]:
            assert _tree(cmnt / ".snapshots" / name) == snapshots[name], name
        assert not (cmnt / ".snapshots" / order[0]).exists()
        assert (cmnt / "big2").read_bytes() == snapshots[order[2]]["big2"]
        c.stop()
    finally:
        c.cleanup()
