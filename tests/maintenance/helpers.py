"""Building stores with history for the maintenance tests."""

from __future__ import annotations

import os
from pathlib import Path

from vfs.config import StoreConfig
from vfs.maintenance import fsck
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo


def write(repo: Repository, name: str, data: bytes) -> InodeNo:
    """A new version of file `name` in the root (created if missing)."""
    ino = repo.catalog.lookup(ROOT_INO, name.encode())
    if ino is None:
        ino = repo.catalog.create(ROOT_INO, name.encode(), 0o100644, 0, 0).ino
    repo.commit_bytes(ino, data)
    return ino


def read(repo: Repository, name: str, at: int | None = None) -> bytes:
    ino = repo.catalog.lookup(ROOT_INO, name.encode(), **({} if at is None else {"at": at}))
    assert ino is not None
    v = repo.catalog.version_at(ino, **({} if at is None else {"at": at}))
    return b"" if v is None else b"".join(repo.iter_content(v))


def small_packs(path: Path) -> Repository:
    """A store whose packs seal at 64 KiB and whose chunks are small: many packs from little data."""
    return Repository.init(path, StoreConfig(chunk_min=4096, chunk_avg=8192, chunk_max=16384, pack_target=65536))


def blob(seed: int, size: int) -> bytes:
    """Incompressible, distinct per seed."""
    import random

    return random.Random(seed).randbytes(size)


def clean(repo: Repository, *, read_data: bool = True) -> fsck.Report:
    report = fsck.check(repo, read_data=read_data)
    assert not report.problems, [p.message for p in report.problems]
    return report


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    os.sync()
