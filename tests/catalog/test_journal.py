"""Batched tree edits: one transaction for many, journalled so that a killed process loses none."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.helpers import DIR, FILE, mkdir, mkfile, names, observe
from tests.conftest import LogWatch
from vfs.catalog import Catalog
from vfs.catalog.journal import _RECORD, read_journal
from vfs.errors import NoSpace, NotFound
from vfs.types import ROOT_INO, InodeNo


def _committed_names(path: Path, parent: int) -> set[bytes]:
    """The live names of `parent` another connection sees (what a killed process leaves committed)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM dirents WHERE parent = ? AND commit_to = ?", (parent, 1 << 62))
        return {bytes(r[0]) for r in rows}
    finally:
        conn.close()


def test_batched_deletes_are_seen_at_once_and_committed_by_the_next_write(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    for n in (b"a", b"b", b"c"):
        mkfile(cat, d, n)
    head = cat.head().no
    cat.unlink(d, b"a", batched=True)
    cat.unlink(d, b"b", batched=True)
    assert cat.batched == 2
    assert names(cat, d) == [b"c"] and cat.lookup(d, b"a") is None
    assert _committed_names(cat.path, d) == {b"a", b"b", b"c"}  # not committed yet
    mkfile(cat, d, b"a")  # a later create of the same name commits the deletes first
    assert cat.batched == 0
    assert _committed_names(cat.path, d) == {b"a", b"c"}
    assert cat.head().no == head + 3  # each delete is still a commit of its own
    assert cat.attr(d).nlink == 2


def test_a_failed_batched_delete_undoes_only_itself(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    mkfile(cat, d, b"a")
    head = cat.head().no
    cat.unlink(d, b"a", batched=True)
    with pytest.raises(NotFound):
        cat.unlink(d, b"missing", batched=True)
    assert cat.batched == 1
    cat.commit_batch()
    assert _committed_names(cat.path, d) == set()
    assert cat.head().no == head + 1  # no commit of the failed one


def test_an_edit_that_fails_after_changing_rows_undoes_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its rows are in the batch's transaction: the batch is rolled back and made again from its journal,
    which holds the edits before it."""
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000, cache_live_attrs=True)
    d = mkdir(cat, ROOT_INO, b"d")
    head = cat.head().no
    cat.create(d, b"a", FILE, 1000, 1000, batched=True)
    cat.create(d, b"sub", DIR, 1000, 1000, batched=True)

    def no_room(*_: object) -> None:
        monkeypatch.undo()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cat._journal, "add", no_room)  # after the create's rows, before its end
    with pytest.raises(NoSpace):
        cat.create(d, b"b", FILE, 1000, 1000, batched=True)
    assert cat.batched == 2
    assert names(cat, d) == [b"a", b"sub"] and cat.attr(d).nlink == 3
    made = cat.create(d, b"c", FILE, 1000, 1000, batched=True)
    cat.commit_batch()
    fresh = Catalog.open(path)
    assert names(fresh, d) == [b"a", b"sub", b"c"] and fresh.attr(made.ino) == made
    assert fresh.head().no == head + 3 and fresh.check() == []
    fresh.close()
    cat.close()


def test_deletes_a_killed_process_did_not_commit_are_replayed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000)
    d = mkdir(cat, ROOT_INO, b"d")
    for n in (b"a", b"b", b"c"):
        mkfile(cat, d, n)
    sub = mkdir(cat, d, b"sub")
    cat.unlink(d, b"a", batched=True)
    cat.unlink(d, b"sub", rmdir=True, batched=True)
    # A killed process: its open transaction is gone, its journal stays.
    cat._db.close()
    assert _committed_names(path, d) == {b"a", b"b", b"c", b"sub"}
    again = Catalog.open(path)
    assert again.replay_edits() == 2
    assert names(again, d) == [b"b", b"c"]
    assert again.attr(d).nlink == 2 and again.path_of(sub) is None
    assert again.replay_edits() == 0  # once only
    assert again.check() == []
    again.close()


def test_a_committed_batch_is_not_replayed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000)
    mkfile(cat, ROOT_INO, b"a")
    cat.unlink(ROOT_INO, b"a", batched=True)
    journal = path.with_name("catalog.db-edits").read_bytes()
    cat.commit_batch()
    mkfile(cat, ROOT_INO, b"a")  # the same name again
    # Killed between the batch's commit and the journal's truncation: the journal names a delete
    # that was committed, after which the name was made again.
    path.with_name("catalog.db-edits").write_bytes(journal)
    cat._db.close()
    again = Catalog.open(path)
    assert again.replay_edits() == 0
    assert names(again, ROOT_INO) == [b"a"]
    again.close()


def _timeless(tree: dict[bytes, Any]) -> dict[bytes, Any]:
    return {path: (dataclasses.replace(attr, atime_ns=0, mtime_ns=0, ctime_ns=0), *rest)
            for path, (attr, *rest) in tree.items()}


def _every_kind_batched(cat: Catalog) -> dict[str, InodeNo]:
    """One edit of each kind in the open batch, after committed files to edit."""
    d = mkdir(cat, ROOT_INO, b"d")
    old = mkfile(cat, d, b"old")
    gone = mkfile(cat, d, b"gone")
    x = mkfile(cat, ROOT_INO, b"x")
    for ino in (ROOT_INO, d, old, gone, x):
        cat.attr(ino)  # known before the edits, as the kernel's requests make them (cached, if the catalog caches)
    made = {
        "file": cat.create(d, b"new", FILE, 1000, 1000, batched=True).ino,
        "dir": cat.create(d, b"sub", DIR | 0o2000, 1000, 1000, batched=True).ino,
        "link": cat.create(d, b"ln", 0o120777, 1000, 1000, target=b"new", batched=True).ino,
        "fifo": cat.create(d, b"p", 0o010600, 0, 0, rdev=0, batched=True).ino,
    }
    cat.link(old, made["dir"], b"old-link", batched=True)
    cat.rename(d, b"new", made["dir"], b"moved", batched=True)
    cat.rename(ROOT_INO, b"x", d, b"old", batched=True)  # over a file: its history goes on
    cat.rename(made["dir"], b"moved", d, b"ln", exchange=True, batched=True)
    cat.set_attr(made["file"], mode=0o600, uid=7, mtime_ns=123_000, batched=True)
    cat.unlink(d, b"gone", batched=True)
    cat.unlink(made["dir"], b"old-link", batched=True)
    made.update(d=d, old=old, gone=gone, x=x)
    return made


def test_every_kind_of_edit_a_killed_process_did_not_commit_is_replayed(tmp_path: Path) -> None:
    # The same edits made committed one by one, for comparison.
    expected_cat = Catalog.initialize(tmp_path / "expected.db", "test-store", {}, 1000, 1000)
    _every_kind_batched(expected_cat)
    expected_cat.commit_batch()
    expected = _timeless(observe(expected_cat, expected_cat.head().no))
    expected_cat.close()

    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000)
    made = _every_kind_batched(cat)
    assert cat.batched == 11
    cat._db.close()  # a killed process: its open transaction is gone, its journal stays
    again = Catalog.open(path)
    assert again.replay_edits() == 11
    # The same inode numbers: staging files, which survive the process too, are named by them.
    assert again.lookup(made["d"], b"ln") == made["file"] and again.lookup(made["d"], b"sub") == made["dir"]
    assert _timeless(observe(again, again.head().no)) == expected  # replayed edits are dated now
    attr = again.attr(made["file"])
    assert (attr.mode & 0o7777, attr.uid, attr.mtime_ns, attr.nlink) == (0o600, 7, 123_000, 1)
    assert again.attr(made["dir"]).mode & 0o2000 and again.readlink(made["link"]) == b"new"
    assert again.check() == []
    again.close()


def test_a_journal_of_deletes_left_by_an_older_version_is_replayed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000)
    d = mkdir(cat, ROOT_INO, b"d")
    a = mkfile(cat, d, b"a")
    mkfile(cat, d, b"b")
    head = cat.head().no
    cat.close()
    # Its format: the last commit, then parent, inode, rmdir, name length, name.
    legacy = head.to_bytes(8, "little") + _RECORD.pack(d, a, 0, 1) + b"a"
    path.with_name("catalog.db-deletes").write_bytes(legacy)
    again = Catalog.open(path)
    assert again.replay_edits() == 1
    assert names(again, d) == [b"b"]
    again.close()


def test_attributes_cached_after_batched_edits_are_what_the_catalog_holds(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000, cache_live_attrs=True)
    made = _every_kind_batched(cat)
    # Known without a query: directories, new files, and the link counts of files whose names changed.
    assert set(cat._live_attrs) >= {ROOT_INO, made["d"], made["dir"], made["fifo"], made["old"], made["gone"]}
    cached = {ino: cat.attr(ino) for ino in (*made.values(), ROOT_INO)}
    assert cached[made["gone"]].nlink == cached[made["old"]].nlink == 0 and cached[made["x"]].nlink == 1
    cat.commit_batch()
    fresh = Catalog.open(path)
    assert {ino: fresh.attr(ino) for ino in cached} == cached
    fresh.close()
    cat.close()


def test_a_batch_sqlite_rolled_back_is_made_again_from_its_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000, cache_live_attrs=True)
    d = mkdir(cat, ROOT_INO, b"d")
    cat.create(d, b"a", FILE, 1000, 1000, batched=True)
    cat.create(d, b"sub", DIR, 1000, 1000, batched=True)
    assert cat.attr(d).nlink == 3  # cached, as the batch left it

    def full_disk(*_: object) -> None:
        monkeypatch.undo()  # once: the journal's edits are made again by the real one
        cat._db.execute("ROLLBACK")  # what SQLite does to the whole batch when the disk fills mid-statement
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(cat, "_apply", full_disk)
    with pytest.raises(NoSpace):
        cat.create(d, b"b", FILE, 1000, 1000, batched=True)
    assert cat.batched == 2  # made again from the journal, without the attributes cached before
    cat.create(d, b"c", FILE, 1000, 1000, batched=True)
    cached = cat.attr(d)
    cat.commit_batch()
    fresh = Catalog.open(path)
    assert fresh.attr(d) == cached and cached.nlink == 3
    assert names(fresh, d) == [b"a", b"sub", b"c"] and fresh.check() == []
    fresh.close()
    cat.close()


def test_sync_commits_the_batch_before_it_fsyncs(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    cat.create(d, b"new", FILE, 1000, 1000, batched=True)
    assert _committed_names(cat.path, d) == set()
    cat.sync()  # fsync(2) of a created file: its name must survive a power loss too
    assert cat.batched == 0 and _committed_names(cat.path, d) == {b"new"}


def test_a_journal_edit_that_cannot_be_made_again_or_is_torn_is_left_out(tmp_path: Path, log_watch: LogWatch) -> None:
    log_watch.expect("journalled unlink in directory .* could not be made again")
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000)
    d = mkdir(cat, ROOT_INO, b"d")
    a = mkfile(cat, d, b"a")
    cat.create(d, b"made", FILE, 1000, 1000, batched=True)
    journal = path.with_name("catalog.db-edits")
    whole = journal.read_bytes()
    cat._db.close()  # killed
    missing = _RECORD.pack(d, a, 0, 7) + b"missing"  # an unlink no state allows (a defect): left out, logged
    unlink_a = _RECORD.pack(d, a, 0, 1) + b"a"
    torn = whole[8:-3]  # the create again, its arguments cut short: never acknowledged
    unknown = _RECORD.pack(d, a, 200, 1) + b"x"  # a kind no version writes: read as a torn end too
    journal.write_bytes(whole + missing + unlink_a + torn)
    again = Catalog.open(path)
    assert again.replay_edits() == 3
    assert names(again, d) == [b"made"]
    assert any("could not be made again" in r.getMessage() for r in log_watch.records)
    assert again.check() == []
    again.close()
    journal.write_bytes(whole[:8] + unknown)
    assert read_journal(journal) == (int.from_bytes(whole[:8], "little"), [])
