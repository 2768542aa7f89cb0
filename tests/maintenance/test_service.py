"""The maintenance service: one driver for a mounted store (live hooks, running uploader) and an
unmounted one (an uploader opened per request by its factory, closed after)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from vfs.backend import Backend
from vfs.backend.memory import MemoryBackend
from vfs.config import RemoteConfig
from vfs.errors import UsageError
from vfs.maintenance.retention import Policy
from vfs.maintenance.service import LiveMount, Maintenance
from vfs.repository import Repository
from vfs.sync import layout
from vfs.sync.uploader import Uploader
from vfs.types import ROOT_INO, InodeNo


def _write(repo: Repository, name: bytes, data: bytes) -> InodeNo:
    ino = repo.catalog.create(ROOT_INO, name, 0o100644, 0, 0).ino
    repo.commit_bytes(ino, data)
    return ino


class FakeMount:
    """A LiveMount that records what maintenance asked of it."""

    def __init__(self, open_inodes: list[InodeNo]) -> None:
        self.calls: list[str] = []
        self.inodes = open_inodes

    async def flush(self) -> None:
        self.calls.append("flush")

    @asynccontextmanager
    async def commits_paused(self) -> AsyncIterator[None]:
        self.calls.append("pause")
        yield
        self.calls.append("resume")

    def live(self) -> LiveMount:
        return LiveMount(flush=self.flush, commits_paused=self.commits_paused, open_inodes=lambda: self.inodes)


async def test_mounted_prune_commits_open_files_first(repo: Repository) -> None:
    ino = _write(repo, b"a", b"one")
    repo.commit_bytes(ino, b"two")
    mount = FakeMount([ino])
    service = Maintenance(repo, mount=mount.live())
    answer = await service.prune(Policy(last=1, versions_within_ns=0), dry_run=True)
    assert mount.calls == ["flush"]
    assert answer["versions"] == 1 and answer["versions_kept"] == 1  # "one" goes, "two" stays


async def test_mounted_gc_pauses_the_committer_and_needs_no_remote(repo: Repository) -> None:
    _write(repo, b"a", b"data")
    mount = FakeMount([])
    answer = await Maintenance(repo, mount=mount.live()).gc()
    assert mount.calls == ["flush", "pause", "resume"]
    assert "remote" not in answer and "remote_error" not in answer


async def test_without_a_remote_sync_fails_and_status_says_so(repo: Repository) -> None:
    mounted = Maintenance(repo, mount=FakeMount([]).live())
    for request in (mounted.request_sync(), Maintenance(repo).sync_now(limit=1.0)):
        with pytest.raises(UsageError, match=f"store {repo.path} has no remote; set one with 'vfs remote set'"):
            await request
    # Asking for the status of a store without a remote is no error, mounted or not: both say "no remote".
    unmounted = Maintenance(repo).status()
    assert mounted.status() == {**unmounted, "mounted": True} and unmounted["remote"] is None


def test_a_running_uploader_needs_a_mount(repo: Repository) -> None:
    with pytest.raises(ValueError, match="mounted"):
        Maintenance(repo, uploader=Uploader(repo, MemoryBackend()))


async def test_unmounted_requests_open_an_uploader_each_and_close_it(repo: Repository) -> None:
    repo.catalog.set_meta("remote", RemoteConfig("memory://bucket").to_json())
    repo.close()
    store = Repository.open(repo.path)
    try:
        bucket = MemoryBackend("bucket")
        opened: list[Backend] = []

        class Counted(MemoryBackend):
            def close(self) -> None:
                opened.remove(self)

        def factory(r: Repository) -> Uploader:
            backend = Counted("bucket")
            backend._objects = bucket._objects  # one bucket behind every uploader
            opened.append(backend)
            return Uploader(r, backend, max_pause=0.1)

        service = Maintenance(store, open_uploader=factory)
        _write(store, b"a", b"data" * 1000)
        assert await service.sync_now(limit=30.0) is None
        assert not opened and bucket.head(layout.LATEST_KEY) is not None
        assert service.status()["backlog_objects"] == 0
        result = await service.gc_remote()
        assert not opened and result.checkpoint is not None
        answer = await service.gc(dry_run=True)
        assert answer["remote"]["packs_forgotten"] == []  # an unmounted dry run plans the remote part too
    finally:
        store.close()
