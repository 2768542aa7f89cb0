"""Staging files a killed daemon left behind: committed when complete, ignored when half made."""

from __future__ import annotations

import stat

from vfs.fs.filesystem import FileSystem
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
    assert list(repo.staging.iterdir()) == []
