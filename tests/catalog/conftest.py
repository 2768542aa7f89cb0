"""The `cat` fixture: a new catalog, checked for consistency after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vfs.catalog import Catalog


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog.initialize(tmp_path / "catalog.db", "test-store", {}, 1000, 1000)
    yield c
    assert c.check() == []
    c.close()
