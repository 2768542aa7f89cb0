"""Fixtures shared by every test: a fresh repository, failing on unexpected WARNING logs, shared
directories that are removed after use, and one S3 endpoint (tests/s3_server.py) for the session.

The S3 fixtures are registered here, once: a session fixture imported into several modules would
start a server for each."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3_server import moto_endpoint, s3_admin, s3_bucket, s3_credentials  # noqa: F401
from vfs.repository import Repository


def pytest_report_header(config: pytest.Config) -> str:
    """The free space where the tests write: a run on a nearly full disk fails in a cascade of ENOSPC."""
    where = config.option.basetemp or tempfile.gettempdir()
    return f"free in {where}: {shutil.disk_usage(where).free / 2**30:.1f} GiB"


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


@contextlib.contextmanager
def shared_dir(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A directory for a fixture that several tests share, removed after them, as a passed test's
    tmp_path is after it (tmp_path_retention_policy in pyproject.toml)."""
    path = factory.mktemp(name)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def open_files_under(root: Path, pid: int | str = "self", *, settle_to: list[str] | None = None,
                     timeout: float = 10.0) -> list[str]:
    """The files under `root` that process `pid` holds open, sorted. With `settle_to`, asked again until
    they are those or `timeout` passes: a thread may hold one open for a moment (a pack's early flush),
    a leaked one stays."""
    deadline = time.monotonic() + timeout
    while True:
        out = []
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:  # closed meanwhile (the listing's own descriptor, for one)
                continue
            if target.startswith(f"{root}/"):
                out.append(target)
        out.sort()
        if settle_to is None or out == settle_to or time.monotonic() > deadline:
            return out
        time.sleep(0.02)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repository]:
    """A new, empty store with the default configuration, closed after the test."""
    r = Repository.init(tmp_path / "store")
    try:
        yield r
    finally:
        r.close()
