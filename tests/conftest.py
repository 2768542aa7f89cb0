"""Fixtures shared by every test: a fresh repository, and failing on unexpected WARNING logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from vfs.repository import Repository


class LogWatch(logging.Handler):
    """Collects WARNING-or-above records; a test declares the ones it expects with `expect`."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._expected: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, pattern: str) -> None:
        """Allow records whose message matches `pattern` (re.search)."""
        self._expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        out = []
        for r in self.records:
            msg = r.getMessage()
            if not any(p.search(msg) for p in self._expected):
                out.append(f"{r.levelname} {r.name}: {msg}")
        return out


@pytest.fixture(autouse=True)
def log_watch() -> Iterator[LogWatch]:
    """Fail the test if anything logged a WARNING or worse that the test did not `expect`."""
    watch = LogWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    try:
        yield watch
    finally:
        root.removeHandler(watch)
    unexpected = watch.unexpected()
    if unexpected:
        pytest.fail("unexpected log records:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    """A new, empty store with the default configuration, closed after the test."""
    r = Repository.init(tmp_path / "store")
    try:
        yield r
    finally:
        r.close()
