"""The catalog's own consistency check finds damaged rows."""

from __future__ import annotations

import sqlite3

from tests.catalog.helpers import content, mkfile
from vfs.catalog import Catalog
from vfs.store import codec
from vfs.types import ROOT_INO, ChunkId


def test_check_reports_damage(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    cat.commit_version(f, content(b"hello"))
    with sqlite3.connect(cat.path) as db:
        db.execute("DELETE FROM chunks")
    db.close()
    problems = cat.check()
    assert len(problems) == 1 and codec.chunk_id(b"hello").hex() in problems[0]
    with sqlite3.connect(cat.path) as db:  # undo, so the fixture's final check passes
        db.execute("INSERT INTO chunks VALUES (?, 1, 16, 0, 5, 5)", (ChunkId(codec.chunk_id(b"hello")),))
    db.close()
