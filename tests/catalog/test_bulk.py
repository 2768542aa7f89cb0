"""The bulk loader: many files with their versions in one commit, as create and commit_version make them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.catalog.helpers import content, mkfile
from vfs.catalog import Catalog
from vfs.catalog.bulk import bulk_create_files
from vfs.errors import Exists, InvalidArgument
from vfs.types import ROOT_INO


def test_bulk_created_files_are_like_created_ones(tmp_path: Path) -> None:
    cat = Catalog.initialize(tmp_path / "catalog.db", "x", {}, 0, 0)
    head = cat.head().no
    a, b, empty = bulk_create_files(
        cat, ROOT_INO, [(b"a", [content(b"a1"), content(b"a2")]), (b"b", [content(b"b1")]), (b"e", [])],
        mode=stat.S_IFREG | 0o640, uid=5, gid=6)
    assert cat.head().no == head + 1  # one commit
    assert [(v.vno, v.size) for v in cat.versions(a)] == [(1, 2), (2, 2)]
    assert cat.version_at(a) == cat.version(a, 2) and cat.version_at(b) == cat.version(b, 1)
    assert cat.version_at(empty) is None
    attr = cat.attr(a)
    assert (attr.mode, attr.uid, attr.gid, attr.size, attr.vno, attr.nlink) == (stat.S_IFREG | 0o640, 5, 6, 2, 2, 1)
    assert [e.name for e in cat.readdir(ROOT_INO)] == [b"a", b"b", b"e"]
    # the next version of a bulk-made file follows its last
    assert cat.commit_version(b, content(b"b2")).vno == 2
    assert cat.check() == []
    cat.close()


def test_bulk_names_are_checked_and_nothing_is_made_on_error(tmp_path: Path) -> None:
    cat = Catalog.initialize(tmp_path / "catalog.db", "x", {}, 0, 0)
    mkfile(cat, ROOT_INO, b"taken")
    head = cat.head().no
    with pytest.raises(Exists):
        bulk_create_files(cat, ROOT_INO, [(b"new", []), (b"taken", [])], mode=stat.S_IFREG | 0o644, uid=0, gid=0)
    with pytest.raises(Exists, match="given twice"):
        bulk_create_files(cat, ROOT_INO, [(b"x", []), (b"x", [])], mode=stat.S_IFREG | 0o644, uid=0, gid=0)
    with pytest.raises(InvalidArgument):
        bulk_create_files(cat, ROOT_INO, [(b"d", [])], mode=stat.S_IFDIR | 0o755, uid=0, gid=0)
    assert cat.head().no == head and cat.lookup(ROOT_INO, b"new") is None
    cat.close()
