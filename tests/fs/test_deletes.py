"""Tree edits through the filesystem join the catalog's batch, and what the kernel writes back of a deleted
file costs no commit."""

from __future__ import annotations

import os
import sqlite3
import stat

import trio

from vfs.catalog import LIVE
from vfs.fs.filesystem import FileSystem
from vfs.repository import Repository
from vfs.types import ROOT_INO


async def test_edits_are_batched_until_fsyncdir(repo: Repository) -> None:
    fs = FileSystem(repo)
    inos = []
    for name in (b"a", b"b", b"c"):
        fh, attr = await fs.create(ROOT_INO, name, 0o644, os.O_WRONLY, 0, 0)
        await fs.release(fh)
        inos.append(attr.ino)
    await fs.mkdir(ROOT_INO, b"d", stat.S_IFDIR | 0o755, 0, 0)
    assert repo.catalog.batched == 4  # the creates and the mkdir
    await fs.fsyncdir()
    assert repo.catalog.batched == 0
    head = repo.catalog.head().no
    for name in (b"a", b"b", b"c"):
        fs.unlink(ROOT_INO, name)
    fs.rmdir(ROOT_INO, b"d")
    assert repo.catalog.batched == 4
    assert [e[1] for e in await fs.readdir(ROOT_INO, 0)] == []
    # The kernel writes back the times it cached of a file it forgets, deleted or not.
    attr = await fs.setattr(inos[0], mtime_ns=123)
    assert attr.nlink == 0
    assert repo.catalog.batched == 4 and repo.catalog.head().no == head + 4
    await fs.fsyncdir()
    assert repo.catalog.batched == 0
    await fs.close()
    assert repo.catalog.check() == []


async def test_a_running_filesystem_commits_its_batch_of_edits_by_itself(repo: Repository) -> None:
    fs = FileSystem(repo)
    async with trio.open_nursery() as nursery:
        await nursery.start(fs.run)
        await fs.mkdir(ROOT_INO, b"d", stat.S_IFDIR | 0o755, 0, 0)
        fs.rmdir(ROOT_INO, b"d")
        fs.symlink(ROOT_INO, b"ln", b"target", 0, 0)
        assert repo.catalog.batched == 3
        for _ in range(3000):  # committed a moment after it opened; 30 s is for a stuck batch only
            if not repo.catalog.batched:
                break
            await trio.sleep(0.01)
        assert repo.catalog.batched == 0, "nothing committed the batch"
        nursery.cancel_scope.cancel()
    conn = sqlite3.connect(repo.catalog.path)  # what another connection sees: committed
    try:
        names = {bytes(r[0]) for r in conn.execute("SELECT name FROM dirents WHERE parent = ? AND commit_to = ?",
                                                    (ROOT_INO, LIVE))}
    finally:
        conn.close()
    assert names == {b"ln"}
    await fs.close()
