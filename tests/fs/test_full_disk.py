"""A full disk under the store: a write right after a delete gets the space the delete gave back.

The delete's staging file is emptied by a background task (`StagingFiles.empty_spares`), which these
tests never start: without the write waiting for that emptying itself, its space would still be taken.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vfs.errors import NoSpace
from vfs.fs.filesystem import FileSystem
from vfs.repository import Repository
from vfs.types import ROOT_INO


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


async def test_a_write_after_a_delete_on_a_full_disk_gets_the_space_back(small_disk: Path) -> None:
    repo = Repository.init(small_disk / "store")
    fs = FileSystem(repo)
    ballast = small_disk / "ballast"
    ballast.write_bytes(bytes(512 << 10))
    try:
        fh, _ = await fs.create(ROOT_INO, b"big", 0o644, os.O_WRONLY, 0, 0)
        chunk = os.urandom(1 << 20)
        with pytest.raises(NoSpace):
            for i in range(64):
                await fs.write(fh, i << 20, chunk)
        await fs.release(fh)
        ballast.unlink()  # room for the catalog to record the delete (with none, it frees the file at once)
        fs.unlink(ROOT_INO, b"big")
        assert os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize < len(chunk)  # not emptied yet
        fh, _ = await fs.create(ROOT_INO, b"after", 0o644, os.O_WRONLY, 0, 0)
        assert await fs.write(fh, 0, chunk) == len(chunk)
        await fs.release(fh)
    finally:
        await fs.close()
        repo.close()
