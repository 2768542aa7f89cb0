"""Snapshots as the commands take them (vfs.fs.snapshots): default names are unique and resolvable."""

from __future__ import annotations

import types

import pytest

from vfs.errors import UsageError
from vfs.fs import history, snapshots
from vfs.fs.locate import locate
from vfs.repository import Repository
from vfs.types import ROOT_INO

SECOND = 1_795_342_500  # 2026-11-22T10:15:00Z


def test_default_names_within_one_second_are_distinct_and_each_resolves(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    ino = repo.catalog.create(ROOT_INO, b"f", 0o100644, 0, 0).ino
    taken = []
    with monkeypatch.context() as m:
        # Every default name is made in the same instant, as by two backup runs within one second.
        m.setattr(history, "time", types.SimpleNamespace(time_ns=lambda: SECOND * 10**9 + 250_117_001))
        for content in (b"one", b"two", b"three"):
            repo.commit_bytes(ino, content)
            taken.append((snapshots.take(repo.catalog).name, content))
    assert [name for name, _ in taken] == [
        "2026-11-22T10:15:00Z", "2026-11-22T10:15:00.250117Z", "2026-11-22T10:15:00.250118Z"]
    for name, content in taken:
        found = locate(repo.catalog, (b"f",), name)
        assert found.version is not None and b"".join(repo.iter_content(found.version)) == content
        with pytest.raises(UsageError, match="would read as a time"):
            history.check_snapshot_name(name)  # so no user-chosen name is ever one of these
    assert repo.catalog.check() == []


def test_default_names_go_on_past_the_last_microsecond_of_a_second() -> None:
    names = history.default_snapshot_names(SECOND * 10**9 + 999_999_000)
    assert [next(names) for _ in range(3)] == [
        "2026-11-22T10:15:00Z", "2026-11-22T10:15:00.999999Z", "2026-11-22T10:15:01.000000Z"]
