"""A staging file being written has the disk begin writing it every WRITE_BACK_STEP bytes, so that an
fsync(2) at the end finds little left to wait for (the figures are scripts/bench's seq rows)."""

from __future__ import annotations

import errno
import os

import pytest
import trio

from vfs.fs import staging
from vfs.fs.filesystem import FileSystem
from vfs.fsutil import start_write_back
from vfs.repository import Repository
from vfs.types import ROOT_INO


async def test_writes_have_the_disk_begin_writing_their_staging_file_every_step(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    begun: list[tuple[int, int]] = []  # (inode, size) of the file of each write-back begun
    began = trio.Event()

    def record(fd: int) -> None:  # in the filesystem's thread
        st = os.fstat(fd)
        begun.append((st.st_ino, st.st_size))
        start_write_back(fd)
        trio.from_thread.run_sync(began.set)

    monkeypatch.setattr(staging, "start_write_back", record)
    fs = FileSystem(repo)
    block = os.urandom(1 << 20)
    per_step = staging.WRITE_BACK_STEP // len(block)
    written = 0  # blocks

    async def write_up_to(blocks: int) -> None:
        nonlocal written
        while written < blocks:
            await fs.write(fh, written * len(block), block)
            written += 1

    async with trio.open_nursery() as background:
        await background.start(fs.run)
        fh, _ = await fs.create(ROOT_INO, b"big", 0o644, os.O_WRONLY, 0, 0)
        await write_up_to(per_step - 1)
        await trio.sleep(0.1)
        assert begun == []  # less than a step: nothing asked
        for step in (1, 2):
            await write_up_to(step * per_step)
            with trio.fail_after(10):
                await began.wait()
            began = trio.Event()
        path = repo.staging / str(fs.catalog.lookup(ROOT_INO, b"big"))
        assert begun == [(os.stat(path).st_ino, step * staging.WRITE_BACK_STEP) for step in (1, 2)]
        await fs.release(fh)
        background.cancel_scope.cancel()
    await fs.close()


def test_start_write_back_fails_clearly_on_what_is_no_file() -> None:
    with pytest.raises(OSError) as e:
        start_write_back(987_654)
    assert e.value.errno == errno.EBADF
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as e:
            start_write_back(r)
        assert e.value.errno == errno.ESPIPE
    finally:
        os.close(r)
        os.close(w)


async def test_a_write_back_without_a_free_descriptor_is_skipped_and_the_write_kept(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_descriptor(fd: int) -> int:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(staging.os, "dup", no_descriptor)
    fs = FileSystem(repo)
    fh, attr = await fs.create(ROOT_INO, b"big", 0o644, os.O_WRONLY, 0, 0)
    data = os.urandom(staging.WRITE_BACK_STEP + 1)
    assert await fs.write(fh, 0, data) == len(data)  # the step is reached: dup is asked, and fails
    assert fs.getattr(attr.ino).size == len(data)
    monkeypatch.undo()
    await fs.release(fh)
    await fs.close()
    assert b"".join(repo.iter_content(repo.catalog.version_at(attr.ino))) == data
