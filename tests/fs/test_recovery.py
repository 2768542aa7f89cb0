"""Staging files a killed daemon left behind: committed when complete, ignored when half made."""

from __future__ import annotations

import os
import stat

from vfs.fs.filesystem import FileSystem
from vfs.fs.spares import Spares
from vfs.repository import Repository
from vfs.types import ROOT_INO


async def test_recovery_commits_staging_files_and_ignores_half_made_copies(repo: Repository) -> None:
    a = repo.catalog.create(ROOT_INO, b"a", stat.S_IFREG | 0o644, 0, 0).ino
    b = repo.catalog.create(ROOT_INO, b"b", stat.S_IFREG | 0o644, 0, 0).ino
    repo.commit_bytes(a, b"a, committed\n")
    repo.commit_bytes(b, b"b, committed, and long enough to be cut short\n")
    # a: written after its last commit, then the daemon was killed.
    (repo.staging / str(a)).write_bytes(b"a, written but not committed\n")
    # b: killed while its committed content was being copied into a staging file.
    (repo.staging / f"{b}.copy").write_bytes(b"b, committed, and lo")
    fs = FileSystem(repo)
    assert await fs.recover() == 1
    va, vb = repo.catalog.version_at(a), repo.catalog.version_at(b)
    assert va is not None and va.vno == 2 and va.origin == "recovery"
    assert repo.read(va, 0, 100) == b"a, written but not committed\n"
    assert vb is not None and vb.vno == 1
    assert [p.name for p in repo.staging.iterdir()] == ["spare"]


async def test_spare_staging_files_are_reused_emptied_and_never_recovered(repo: Repository) -> None:
    a = repo.catalog.create(ROOT_INO, b"a", stat.S_IFREG | 0o644, 0, 0).ino
    repo.commit_bytes(a, b"a, committed\n")
    spares = Spares(repo.staging)
    path = repo.staging / str(a)
    fd = spares.create(path)
    os.write(fd, b"content that was committed meanwhile")
    inode = os.fstat(fd).st_ino
    assert spares.discard(fd, path)
    assert not path.exists()
    # Not emptied yet (the background task does that in a thread): not reused yet either.
    other = spares.create(repo.staging / "other")
    assert os.fstat(other).st_ino != inode
    os.close(other)
    (repo.staging / "other").unlink()
    spares.empty()
    fd = spares.create(path)  # the same file, renamed back, empty, through the descriptor it kept
    assert os.fstat(fd).st_ino == inode and os.fstat(fd).st_size == 0
    os.write(fd, b"x")
    # A daemon killed between the rename and the truncate leaves a spare with content: it must never
    # become a version, and the next user of the spare must find it empty.
    os.rename(path, spares.dir / "7")
    os.close(fd)
    assert await FileSystem(repo).recover() == 0
    v = repo.catalog.version_at(a)
    assert v is not None and v.vno == 1
    fd = Spares(repo.staging).create(path)
    assert os.fstat(fd).st_ino == inode and os.fstat(fd).st_size == 0
    os.close(fd)
