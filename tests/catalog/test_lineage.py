"""History follows a file through renames, including an editor's atomic save over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog.helpers import content, mkfile
from vfs.catalog import Catalog
from vfs.types import ROOT_INO


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog.initialize(tmp_path / "catalog.db", "test", {}, 0, 0)
    yield c
    assert c.check() == []
    c.close()


def test_atomic_saves_continue_the_targets_history(cat: Catalog) -> None:
    target = mkfile(cat, ROOT_INO, b"notes.txt")
    cat.commit_version(target, content(b"one"))
    before_second_save = cat.head().no
    for text in (b"two", b"three"):
        tmp = mkfile(cat, ROOT_INO, b".notes.txt.swp")
        cat.commit_version(tmp, content(text))
        cat.rename(ROOT_INO, b".notes.txt.swp", ROOT_INO, b"notes.txt")
    now = cat.lookup(ROOT_INO, b"notes.txt")
    assert now is not None
    history = cat.versions(now)
    assert [v.vno for v in history] == [1, 2, 3]
    assert [v.hash for v in history] == [content(t).content_hash for t in (b"one", b"two", b"three")]
    assert cat.attr(now).vno == 3
    assert cat.version(now, 1) == history[0]
    # The tree as it was still shows the first inode with its first content.
    old = cat.lookup(ROOT_INO, b"notes.txt", at=before_second_save)
    assert old == target
    old_version = cat.version_at(target, before_second_save)
    assert old_version is not None and old_version.hash == content(b"one").content_hash


def test_plain_move_keeps_history_and_hard_linked_target_keeps_its_own(cat: Catalog) -> None:
    a = mkfile(cat, ROOT_INO, b"a")
    cat.commit_version(a, content(b"a1"))
    cat.commit_version(a, content(b"a2"))
    cat.rename(ROOT_INO, b"a", ROOT_INO, b"b")
    assert [v.vno for v in cat.versions(a)] == [1, 2]
    # A target with another name left is not "saved over": histories stay apart.
    c = mkfile(cat, ROOT_INO, b"c")
    cat.commit_version(c, content(b"c1"))
    cat.link(c, ROOT_INO, b"c-link")
    cat.rename(ROOT_INO, b"b", ROOT_INO, b"c")
    assert [v.hash for v in cat.versions(a)] == [content(b"a1").content_hash, content(b"a2").content_hash]
    assert [v.vno for v in cat.versions(c)] == [1]
