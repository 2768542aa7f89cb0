"""gc frees what nothing kept uses, repacks mostly-garbage packs, and survives kill -9 at any point."""

from __future__ import annotations

import random
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.kill import kill_after_ready
from tests.maintenance.helpers import blob, clean, read, small_packs, write
from vfs.maintenance import gc, prune
from vfs.maintenance.retention import Policy
from vfs.repository import Repository
from vfs.store.packs import list_packs
from vfs.types import ROOT_INO

FAR_FUTURE = time.time_ns() + 10**18


def _build(path: Path) -> dict[tuple[str, str | None], bytes]:
    """A store with garbage in most packs; returns (file, snapshot or None) -> the content that must stay."""
    repo = small_packs(path)
    expect: dict[tuple[str, str | None], bytes] = {}
    write(repo, "big", blob(999, 300_000))  # whole packs of garbage once pruned
    repo.catalog.unlink(ROOT_INO, b"big")
    for round_ in range(3):
        for i in range(12):
            if (i + round_) % 3 != 0 or round_ == 0:
                write(repo, f"f{i}", blob(round_ * 100 + i, 30_000))
        if round_ == 1:
            repo.catalog.create_snapshot("keep")
            for i in range(12):
                expect[(f"f{i}", "keep")] = read(repo, f"f{i}")
    for i in range(12):
        expect[(f"f{i}", None)] = read(repo, f"f{i}")
    prune.apply(repo.catalog, prune.plan(repo.catalog, Policy(versions_within_ns=0), now_ns=FAR_FUTURE))
    repo.close()
    return expect


def _verify(path: Path, expect: dict[tuple[str, str | None], bytes]) -> None:
    with Repository.open(path) as repo:
        clean(repo)
        for (name, snap), data in expect.items():
            at = None if snap is None else repo.catalog.snapshot(snap).commit_no  # type: ignore[union-attr]
            assert read(repo, name, at) == data, (name, snap)


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "packs").glob("*/*.pack"))


def test_gc_frees_garbage_and_keeps_data(tmp_path: Path) -> None:
    store = tmp_path / "s"
    expect = _build(store)
    before = _disk(store)
    with Repository.open(store) as repo:
        dry = gc.collect(repo, dry_run=True)
        assert _disk(store) == before and dry.chunks_deleted > 0
        result = gc.collect(repo)
        assert result.chunks_deleted == dry.chunks_deleted
        assert result.packs_deleted and result.packs_repacked
        assert result.bytes_freed == before - _disk(store) > 0
        again = gc.collect(repo)
        assert again.chunks_deleted == 0 and not again.packs_deleted and not again.packs_repacked
    _verify(store, expect)


def test_gc_leaves_the_open_pack_alone(tmp_path: Path) -> None:
    with Repository.init(tmp_path / "s") as repo:
        write(repo, "a", b"x" * 1000)
        write(repo, "a", b"y" * 1000)
        prune.apply(repo.catalog, prune.plan(repo.catalog, Policy(versions_within_ns=0), now_ns=FAR_FUTURE))
        packs = list_packs(repo.path / "packs")
        result = gc.collect(repo)
        assert result.chunks_deleted == 1 and list_packs(repo.path / "packs") == packs
        assert read(repo, "a") == b"y" * 1000


@pytest.mark.slow
def test_kill_during_gc_loses_no_kept_data(tmp_path: Path) -> None:
    template = tmp_path / "template"
    expect = _build(template)
    rnd = random.Random(6)
    killed = 0
    for attempt in range(12):
        store = tmp_path / f"s{attempt}"
        shutil.copytree(template, store)
        child = [sys.executable, str(Path(__file__).with_name("gc_child.py")), str(store), str(attempt)]
        killed += kill_after_ready(child, rnd.random() * 0.08)
        _verify(store, expect)
        with Repository.open(store) as repo:  # a later gc finishes the job
            gc.collect(repo)
        _verify(store, expect)
        shutil.rmtree(store)
    assert killed >= 6  # most kills landed inside gc
