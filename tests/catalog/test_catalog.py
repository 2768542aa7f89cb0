"""Opening the catalog: a new one, one made by an older schema, one reopened."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.catalog.helpers import content, dir_links, mkdir, mkfile, observe
from vfs.catalog import LIVE, Catalog
from vfs.types import ROOT_INO


def test_a_catalog_of_schema_1_gets_subdirectory_counts_for_every_state(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "x", {}, 0, 0)
    a = mkdir(cat, ROOT_INO, b"a")
    mkdir(cat, a, b"one")
    mkfile(cat, a, b"file")
    mkdir(cat, a, b"two")
    two = cat.head().no
    cat.rename(a, b"one", ROOT_INO, b"one")
    cat.unlink(a, b"two", rmdir=True)
    expected = {at: dir_links(cat, ROOT_INO, a, at=at) for at in range(1, cat.head().no + 1) if at >= 2}
    assert expected[two] == [3, 4] and expected[cat.head().no] == [4, 2]
    cat.close()
    with sqlite3.connect(path) as db:  # as version 1 made it
        db.execute("ALTER TABLE inode_states DROP COLUMN subdirs")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()
    cat = Catalog.open(path)
    try:
        assert cat.meta("schema_version") == "2"
        assert {at: dir_links(cat, ROOT_INO, a, at=at) for at in expected} == expected
        assert cat.check() == []
        mkdir(cat, a, b"three")
        assert dir_links(cat, a) == [3]
    finally:
        cat.close()


def test_catalog_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "x", {"a": 1}, os.getuid(), os.getgid())
    f = mkfile(cat, ROOT_INO, b"f")
    v = cat.commit_version(f, content(b"hello"))
    seen = observe(cat, LIVE)
    cat.close()
    cat = Catalog.open(path)
    try:
        assert observe(cat, LIVE) == seen
        assert cat.version(f, 1) == v
        assert cat.check() == []
        assert cat.commit_version(f, content(b"more")).vno == 2
    finally:
        cat.close()
