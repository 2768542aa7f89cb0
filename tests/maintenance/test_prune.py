"""Retention: restic's snapshot rules on synthetic times, and version pruning that keeps what it must."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.catalog.helpers import create_snapshot_at
from tests.maintenance.helpers import blob, clean, read, write
from vfs.catalog import Snapshot
from vfs.errors import NotFound, UsageError
from vfs.fs.history import parse_duration
from vfs.maintenance import prune
from vfs.maintenance.retention import Policy, select
from vfs.repository import Repository
from vfs.types import CommitNo

DAY = 86400 * 10**9
START = datetime(2026, 1, 1, tzinfo=UTC)


def _snaps(times: list[datetime]) -> list[Snapshot]:
    return [Snapshot(f"s{i}", CommitNo(i + 2), int(t.timestamp() * 1e9)) for i, t in enumerate(times)]


def _kept(snaps: list[Snapshot], policy: Policy) -> set[str]:
    return {d.snapshot.name for d in select(snaps, policy, UTC) if d.keep}


def test_parse_duration() -> None:
    assert parse_duration("2d") == 2 * DAY
    assert parse_duration("1d12h") == 36 * 3600 * 10**9
    for bad in ("", "2", "d", "2x", "1.5h", "-1d"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_hourly_snapshots_for_sixty_days() -> None:
    snaps = _snaps([START + timedelta(hours=h) for h in range(60 * 24)])
    newest = snaps[-1]
    assert _kept(snaps, Policy(last=3)) == {"s1439", "s1438", "s1437"}
    daily = _kept(snaps, Policy(daily=7))
    # the newest snapshot of each of the last 7 days: 23:00 of each day (the newest day's last hour)
    assert daily == {f"s{d * 24 + 23}" for d in range(53, 60)}
    weekly = select(snaps, Policy(weekly=4), UTC)
    assert sum(d.keep for d in weekly) == 4 and weekly[0].keep
    monthly = _kept(snaps, Policy(monthly=12))
    assert monthly == {"s743", "s1415", "s1439"}  # Jan 31 23:00, Feb 28 23:00, Mar 1 23:00 (newest)
    assert _kept(snaps, Policy(yearly=5)) == {newest.name}
    assert len(_kept(snaps, Policy(within_ns=parse_duration("6h")))) == 7  # newest and the 6 hours before
    combined = _kept(snaps, Policy(last=2, daily=7, monthly=12))
    assert combined == {"s1439", "s1438"} | daily | monthly
    assert _kept(snaps, Policy(hourly=5)) == {f"s{h}" for h in range(1435, 1440)}


def test_reasons_and_no_snapshot_rule() -> None:
    snaps = _snaps([START, START + timedelta(days=1)])
    decisions = select(snaps, Policy(last=1, daily=2), UTC)
    assert decisions[0].reasons == ["last", "daily"] and decisions[1].reasons == ["daily"]
    assert all(d.keep for d in select(snaps, Policy(versions_within_ns=DAY), UTC))


def test_prune_snapshots_and_versions(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "s")
    cat = repo.catalog
    write(repo, "a", b"a1")
    old = create_snapshot_at(cat, "old", int((START - timedelta(days=30)).timestamp() * 1e9))
    write(repo, "a", b"a2")
    write(repo, "b", b"b1")
    create_snapshot_at(cat, "mid", int((START - timedelta(days=10)).timestamp() * 1e9))
    write(repo, "a", b"a3")
    write(repo, "b", b"b2")
    keep = create_snapshot_at(cat, "new", int(START.timestamp() * 1e9))
    write(repo, "a", blob(1, 1000))  # latest of a
    write(repo, "gone", b"g1")
    write(repo, "gone", b"g2")
    cat.unlink(1, b"gone")  # type: ignore[arg-type]
    later = time.time_ns() + 100 * DAY
    policy = Policy(last=1, versions_within_ns=DAY)
    dry = prune.plan(cat, policy, now_ns=later)
    assert dry.forget == ["mid", "old"]
    # a1 (only in old), a2 and b1 (only in mid), both versions of the deleted file go; kept: a3, b2 (new),
    # a's latest; b2 is also b's latest
    assert sorted((v.ino, v.vno) for v in dry.versions) == [(2, 1), (2, 2), (3, 1), (4, 1), (4, 2)]
    assert dry.version_bytes == 2 + 2 + 2 + 2 + 2
    assert cat.snapshot("old") is not None  # a plan changes nothing
    assert prune.apply(cat, dry) == (5, 10)
    assert [s.name for s in cat.snapshots()] == ["new"]
    assert read(repo, "a") == blob(1, 1000)
    assert read(repo, "a", keep.commit_no) == b"a3" and read(repo, "b", keep.commit_no) == b"b2"
    # the states of pruned versions still resolve: the tree at the old commit lists a, reading it says pruned
    assert [e.path for e in cat.tree(old.commit_no)] == [b"a"]
    with pytest.raises(NotFound, match="pruned"):
        read(repo, "a", old.commit_no)
    assert cat.attr(2, old.commit_no).size == 2  # type: ignore[arg-type]
    clean(repo)
    # versions within the window are kept, whatever the snapshots say
    write(repo, "a", b"recent")
    assert prune.plan(cat, Policy(versions_within_ns=DAY)).versions == []
    repo.close()


def test_versions_are_not_pruned_without_keep_versions_within(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "s")
    for i in range(3):
        write(repo, "a", bytes([i]))
    create_snapshot_at(repo.catalog, "x", 0)
    plan = prune.plan(repo.catalog, Policy(last=0, within_ns=1), now_ns=time.time_ns() + 100 * DAY)
    assert plan.versions == [] and plan.versions_kept == 3
    repo.close()


def test_catalog_prune_refuses_held_versions(tmp_path: Path) -> None:
    repo = Repository.init(tmp_path / "s")
    write(repo, "a", b"1")
    write(repo, "a", b"2")
    ids = [v.id for v in repo.catalog.version_infos()]
    assert repo.catalog.prune(ids) == (1, 1)  # the latest version stays
    assert read(repo, "a") == b"2"
    repo.close()
