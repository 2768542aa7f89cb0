"""Commits and time: the tree at every earlier commit, commits by time, and snapshots."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.helpers import commit_time, content, mkdir, mkfile, observe
from vfs.catalog import LIVE, Catalog
from vfs.errors import Exists, NotFound
from vfs.store import codec
from vfs.types import ROOT_INO


def test_time_travel_shows_every_earlier_state(cat: Catalog) -> None:
    history: list[tuple[int, dict[bytes, Any]]] = []

    def step() -> None:
        history.append((cat.head().no, observe(cat, LIVE)))

    step()
    docs = mkdir(cat, ROOT_INO, b"docs")
    step()
    f = mkfile(cat, docs, b"report.txt")
    step()
    cat.commit_version(f, content(b"draft 1"))
    step()
    cat.commit_version(f, content(b"draft 2, longer"))
    step()
    cat.setxattr(f, b"user.tag", b"important")
    step()
    cat.rename(docs, b"report.txt", ROOT_INO, b"final.txt")
    step()
    g = mkfile(cat, docs, b"notes")
    cat.commit_version(g, content(b"notes"))
    step()
    cat.link(g, ROOT_INO, b"notes-link")
    step()
    cat.set_attr(f, mode=0o600)
    step()
    cat.unlink(ROOT_INO, b"final.txt")
    step()
    cat.unlink(docs, b"notes")
    cat.unlink(ROOT_INO, b"notes-link")
    cat.unlink(ROOT_INO, b"docs", rmdir=True)
    step()
    again = mkfile(cat, ROOT_INO, b"final.txt")  # the old name, a new inode
    cat.commit_version(again, content(b"rewritten"))
    step()

    for no, seen in history:
        assert observe(cat, no) == seen, f"tree at commit {no} differs from what it was then"
    assert observe(cat, LIVE) == history[-1][1]

    # Deleted files are still there at old commits, with their content of the time.
    at_draft1 = history[3][0]
    assert cat.lookup(docs, b"report.txt", at_draft1) == f
    v = cat.version_at(f, at_draft1)
    assert v is not None and v.vno == 1 and v.hash == codec.chunk_id(b"draft 1")
    assert cat.lookup(ROOT_INO, b"final.txt", history[6][0]) == f
    assert cat.lookup(ROOT_INO, b"final.txt", history[10][0]) is None
    assert cat.lookup(ROOT_INO, b"final.txt") == again
    assert cat.attr(g, history[8][0]).nlink == 2
    assert cat.attr(g).nlink == 0
    # An inode did not exist before it was created.
    with pytest.raises(NotFound):
        cat.attr(f, history[1][0])
    assert cat.version_at(f, history[2][0]) is None  # created, never written yet


def test_commit_at_time(cat: Catalog) -> None:
    for i in range(5):
        mkfile(cat, ROOT_INO, b"f%d" % i)
    head = cat.head()
    times = {n: commit_time(cat, n) for n in range(1, head.no + 1)}
    assert all(t is not None for t in times.values())
    assert list(times.values()) == sorted(times.values())  # type: ignore[type-var]
    for n, t in times.items():
        assert t is not None
        got = cat.commit_at_time(t)
        assert got is not None and got >= n and times[got] == t
        nxt = times.get(n + 1)
        if nxt is not None and nxt > t:
            assert cat.commit_at_time(nxt - 1) == n
    first = times[1]
    assert first is not None
    assert cat.commit_at_time(first - 1) is None
    assert cat.commit_at_time(head.time_ns + 10**12) == head.no
    assert commit_time(cat, head.no + 1) is None


def test_commit_times_never_go_backwards(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import vfs.catalog.transactions as module

    mkfile(cat, ROOT_INO, b"a")
    t = cat.head().time_ns
    monkeypatch.setattr(module, "now_ns", lambda: t - 10**9)  # the clock stepped back
    mkfile(cat, ROOT_INO, b"b")
    assert cat.head().time_ns == t
    assert cat.commit_at_time(t) == cat.head().no


def _row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    db.close()
    return counts


def test_snapshots_are_one_row_naming_a_commit(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    for i in range(20):
        f = mkfile(cat, d, b"f%d" % i)
        cat.commit_version(f, content(b"%d" % i))
    before = _row_counts(cat.path)
    snap = cat.create_snapshot("monday")
    after = _row_counts(cat.path)
    assert snap.commit_no == cat.head().no and snap.name == "monday"
    assert after == {**before, "snapshots": before["snapshots"] + 1, "commits": before["commits"] + 1}
    head = cat.head().no
    with pytest.raises(Exists):
        cat.create_snapshot("monday")
    assert cat.head().no == head
    tree = observe(cat, snap.commit_no)
    cat.unlink(d, b"f3")
    cat.commit_version(mkfile(cat, d, b"new"), content(b"new"))
    cat.create_snapshot("tuesday")
    assert observe(cat, snap.commit_no) == tree
    assert cat.snapshot("monday") == snap
    assert cat.snapshot("nope") is None
    assert [s.name for s in cat.snapshots()] == ["monday", "tuesday"]
    cat.delete_snapshot("monday")
    with pytest.raises(NotFound):
        cat.delete_snapshot("monday")
    assert [s.name for s in cat.snapshots()] == ["tuesday"]
