"""Batched deletes: one transaction for many, journalled so that a killed process loses none."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.catalog.helpers import mkdir, mkfile, names
from vfs.catalog import Catalog
from vfs.errors import NotFound
from vfs.types import ROOT_INO


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
    cat.unlink(d, b"a", batched=True)
    with pytest.raises(NotFound):
        cat.unlink(d, b"missing", batched=True)
    assert cat.batched == 1
    cat.commit_batch()
    assert _committed_names(cat.path, d) == set()


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
    assert again.replay_deletes() == 2
    assert names(again, d) == [b"b", b"c"]
    assert again.attr(d).nlink == 2 and again.path_of(sub) is None
    assert again.replay_deletes() == 0  # once only
    assert again.check() == []
    again.close()


def test_a_committed_batch_is_not_replayed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "test-store", {}, 1000, 1000)
    mkfile(cat, ROOT_INO, b"a")
    cat.unlink(ROOT_INO, b"a", batched=True)
    journal = path.with_name("catalog.db-deletes").read_bytes()
    cat.commit_batch()
    mkfile(cat, ROOT_INO, b"a")  # the same name again
    # Killed between the batch's commit and the journal's truncation: the journal names a delete
    # that was committed, after which the name was made again.
    path.with_name("catalog.db-deletes").write_bytes(journal)
    cat._db.close()
    again = Catalog.open(path)
    assert again.replay_deletes() == 0
    assert names(again, ROOT_INO) == [b"a"]
    again.close()
