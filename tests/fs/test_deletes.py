"""Tree edits through the filesystem join the catalog's batch, and what the kernel writes back of a deleted
file costs no commit."""

from __future__ import annotations

import os
import stat

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
