"""The composition module opens a store as vfs does: one with a remote gets its pack fetcher."""

from __future__ import annotations

from pathlib import Path

from vfs.compose import init_repository, open_repository
from vfs.config import RemoteConfig
from vfs.repository import Repository
from vfs.sync.fetch import PackFetcher


def test_a_store_with_a_remote_is_opened_with_its_pack_fetcher(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with init_repository(store) as repo:
        assert repo.fetcher is None  # no remote yet
        repo.catalog.set_meta("remote", RemoteConfig(f"file://{tmp_path / 'remote'}").to_json())
    with open_repository(store, lock=False) as repo:
        assert isinstance(repo.fetcher, PackFetcher)
    with Repository.open(store, lock=False) as repo:  # not given one: a missing pack stays missing
        assert repo.remote is not None and repo.fetcher is None


def test_a_store_without_a_remote_has_no_fetcher(tmp_path: Path) -> None:
    init_repository(tmp_path / "store").close()
    with open_repository(tmp_path / "store") as repo:
        assert repo.remote is None and repo.fetcher is None
