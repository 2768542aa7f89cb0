"""The mount daemon killed (SIGKILL) in the middle of the gc and the prune it runs for `vfs gc` and `vfs prune`.

Each round starts the real `vfs mount` daemon with VFS_CRASH_AT naming one crash point of gc or prune
(vfs.crashpoints: the daemon kills itself when it gets there), asks it for that gc or prune, mounts the
store again and checks that nothing is lost: every file closed before the kill, and one still open
(which the request committed first), reads back exactly; every kept snapshot is intact; `vfs fsck
--read-data` is clean; and the same request run again finishes the work.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import shared_dir
from tests.fuse.conftest import Mount, vfs
from tests.maintenance.helpers import blob, small_packs, write
from vfs import crashpoints
from vfs.fs import snapshots
from vfs.maintenance import gc, prune, retention
from vfs.repository import Repository

pytestmark = [pytest.mark.fuse, pytest.mark.slow]

POLICY = ["--keep-last", "1", "--keep-versions-within", "0s"]  # forgets "old"; prunes mixed@1, big@1
OLD = {"mixed": blob(1, 50_000), "small": blob(2, 6_000), "big": blob(3, 300_000)}
KEEP = {"small": OLD["small"], "big": blob(5, 300_000), "mixed": blob(6, 20_000), "doc": blob(4, 20_000)}
NOW = {**KEEP, "doc": blob(7, 20_000)}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store whose pruning leaves garbage chunk rows, packs with nothing used (two or more) and a pack
    mostly garbage (mixed@1 next to small): every step of gc has work."""
    with shared_dir(tmp_path_factory, "base") as path:
        store = path / "store"
        with small_packs(store) as repo:
            for name, data in OLD.items():
                write(repo, name, data)
            snapshots.take(repo.catalog, "old")
            for name in ("big", "mixed", "doc"):
                write(repo, name, KEEP[name])
            snapshots.take(repo.catalog, "keep")
            write(repo, "doc", NOW["doc"])
        trial = store.with_name("trial")
        shutil.copytree(store, trial)
        with Repository.open(trial) as repo:
            plan = prune.plan(repo.catalog, retention.Policy(last=1, versions_within_ns=0))
            prune.apply(repo.catalog, plan)
            dry = gc.collect(repo, dry_run=True)
        assert plan.forget == ["old"] and len(plan.versions) == 2
        assert dry.chunks_deleted and len(dry.packs_deleted) >= 2 and dry.packs_repacked, dry
        yield store


@contextlib.contextmanager
def crashed(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, *request: str
            ) -> Iterator[Mount]:
    """Mount a copy of `base` with `point` armed, run `vfs REQUEST` and see the daemon die in it; then
    mount the store again (unarmed) for the caller to check. Unmounted (or detached) after, also on failure."""
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    shutil.copytree(base, store)
    mnt.mkdir()
    m = Mount(store, mnt)
    try:
        monkeypatch.setenv(crashpoints.ENV, point)  # inherited by the daemon that `vfs mount` starts
        m.start()
        monkeypatch.delenv(crashpoints.ENV)
        pid = m.pid
        if request[0] == "gc":
            vfs("prune", "--mount", str(mnt), *POLICY)
        (mnt / "fresh").write_bytes(blob(8, 40_000))
        f = open(mnt / "open", "wb")  # noqa: SIM115  (closed below, once the mount is dead)
        try:
            f.write(blob(9, 70_000))
            f.flush()  # in the kernel's cache: the request's flush commits it before the work starts
            done = vfs(*request, "--mount", str(mnt), check=False)
        finally:
            with contextlib.suppress(OSError):
                f.close()  # fails on a dead mount
        assert done.returncode != 0, f"crash point {point} was not reached: {done.stdout}"
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
        m.detach_dead(pid)
        m.start()
        yield m
    finally:
        m.cleanup()


def check_files(mnt: Path, *, old_snapshot: bool) -> None:
    for name, data in {**NOW, "fresh": blob(8, 40_000), "open": blob(9, 70_000)}.items():
        assert (mnt / name).read_bytes() == data, name
    assert (mnt / "doc@1").read_bytes() == KEEP["doc"]
    for name, data in KEEP.items():
        assert (mnt / ".snapshots" / "keep" / name).read_bytes() == data, name
    # From the catalog: the kernel may cache a name in /.snapshots for a few seconds after its deletion.
    names = [s["name"] for s in json.loads(vfs("snapshot", "list", "--mount", str(mnt), "--json").stdout)]
    assert names == (["old", "keep"] if old_snapshot else ["keep"])
    if old_snapshot:
        for name, data in OLD.items():
            assert (mnt / ".snapshots" / "old" / name).read_bytes() == data, name


def fsck_clean(store: Path) -> None:
    report = json.loads(vfs("fsck", str(store), "--read-data", "--json").stdout)
    assert report["ok"] and report["problems"] == [], report


def gc_finishes(m: Mount) -> None:
    """A gc now finishes what is left, after which a dry run finds nothing more to do."""
    vfs("gc", "--mount", str(m.path))
    dry = json.loads(vfs("gc", "--mount", str(m.path), "--dry-run", "--json").stdout)
    assert (dry["chunks_deleted"], dry["packs_deleted"], dry["packs_repacked"]) == (0, [], []), dry


def finish(m: Mount) -> None:
    m.stop()
    fsck_clean(m.store)
    log = (m.store / "vfs.log").read_text()
    assert "Traceback" not in log and " ERROR " not in log, log


@pytest.mark.parametrize("point", ["gc:delete-rows", "gc:delete-pack", "gc:delete-pack#2", "gc:repack-copy",
                                   "gc:repack-sync", "gc:repack-move", "gc:delete-repacked"])
def test_daemon_killed_during_gc(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    with crashed(base, tmp_path, monkeypatch, point, "gc") as m:
        check_files(m.path, old_snapshot=False)
        fsck_clean(m.store)
        gc_finishes(m)
        check_files(m.path, old_snapshot=False)
        finish(m)


@pytest.mark.parametrize("point", ["prune:apply", "prune:commit"])
def test_daemon_killed_during_prune(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    with crashed(base, tmp_path, monkeypatch, point, "prune", *POLICY) as m:
        check_files(m.path, old_snapshot=True)  # a prune killed before it committed changed nothing
        fsck_clean(m.store)
        again = json.loads(vfs("prune", "--mount", str(m.path), *POLICY, "--json").stdout)
        assert again["forget"] == ["old"] and again["deleted"] == 2, again
        dry = json.loads(vfs("prune", "--mount", str(m.path), *POLICY, "--dry-run", "--json").stdout)
        assert (dry["forget"], dry["versions"]) == ([], 0), dry
        gc_finishes(m)
        check_files(m.path, old_snapshot=False)
        finish(m)
