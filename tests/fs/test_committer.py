"""The committer gathers closed files into batches: one transaction and one pack fsync for many."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
import trio

from vfs.fs import committer
from vfs.fs.filesystem import FileSystem
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo


def hold_first_batch(
    repo: Repository, monkeypatch: pytest.MonkeyPatch,
) -> tuple[trio.MemoryReceiveChannel[tuple[float, list[InodeNo]]], threading.Event]:
    """Record each batch as it begins, (when, its inodes); the first ends only once the event is set."""
    begun, batches = trio.open_memory_channel[tuple[float, list[InodeNo]]](10)
    first_may_end = threading.Event()
    commit_files = repo.commit_files
    calls = 0

    def record(items: list[tuple[InodeNo, Any, Any, Any]], **kwargs: Any) -> Any:  # in the committer's thread
        nonlocal calls
        calls += 1
        inodes = [item[0] for item in items]
        trio.from_thread.run_sync(lambda: begun.send_nowait((trio.current_time(), inodes)))
        if calls == 1:
            first_may_end.wait(10)
        return commit_files(items, **kwargs)

    monkeypatch.setattr(repo, "commit_files", record)
    return batches, first_may_end


async def save(fs: FileSystem, name: bytes) -> InodeNo:
    fh, attr = await fs.create(ROOT_INO, name, 0o644, os.O_WRONLY, 0, 0)
    await fs.write(fh, 0, name)
    await fs.release(fh)
    return attr.ino


async def test_files_closed_while_a_batch_commits_wait_for_the_next_gather(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    batches, first_may_end = hold_first_batch(repo, monkeypatch)
    fs = FileSystem(repo)
    async with trio.open_nursery() as background:
        await background.start(fs.run)
        a = await save(fs, b"a")
        with trio.fail_after(10):
            assert (await batches.receive())[1] == [a]
        b = await save(fs, b"b")  # closed while a's batch commits
        ended = trio.current_time()
        first_may_end.set()
        with trio.fail_after(10):
            when, inodes = await batches.receive()
        assert inodes == [b]
        # b waited for a gather of its own after a's batch, as a file closed after it would have
        assert when - ended >= committer._COMMIT_GATHER
        background.cancel_scope.cancel()
    await fs.close()


async def test_a_file_deleted_before_its_batch_leaves_none_of_the_queue_behind(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    # Batches of one file: a, c and b are queued in that order, and b, the last, is deleted while a's
    # batch commits. c must still be committed, without a further close to wake the committer.
    monkeypatch.setattr(committer, "_COMMIT_BATCH", 1)
    batches, first_may_end = hold_first_batch(repo, monkeypatch)
    fs = FileSystem(repo)
    a, c = await save(fs, b"a"), await save(fs, b"c")
    await save(fs, b"b")
    async with trio.open_nursery() as background:
        await background.start(fs.run)  # its first gather finds all three queued
        with trio.fail_after(10):
            assert (await batches.receive())[1] == [a]
        fs.unlink(ROOT_INO, b"b")
        first_may_end.set()
        with trio.fail_after(10):
            assert (await batches.receive())[1] == [c]
        background.cancel_scope.cancel()
    await fs.close()
    assert repo.catalog.version_at(c) is not None
