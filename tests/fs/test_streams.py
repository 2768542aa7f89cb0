"""Files appended to from empty are ingested while they are written (an IngestStream), so that their
commit does not read them back; any other write, or a truncate, gives the stream up."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from vfs.fs import staging
from vfs.fs.filesystem import FileSystem
from vfs.repository import Repository
from vfs.store import Ingested, codec
from vfs.types import ROOT_INO

MiB = 1 << 20


@pytest.fixture(autouse=True)
def small_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staging, "_STREAM_FROM", 2 * MiB)


def _content(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _whole_ingests(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The staging files the commit ingests whole (read back), recorded."""
    calls: list[str] = []
    ingest = repo.chunks.ingest

    def spy(path: Path | str, known: object, *, sync: bool = True) -> Ingested:
        calls.append(str(path))
        return ingest(path, known, sync=sync)  # type: ignore[arg-type]

    monkeypatch.setattr(repo.chunks, "ingest", spy)
    return calls


async def _write(fs: FileSystem, name: bytes, data: bytes, writes: list[tuple[int, int]]) -> int:
    fh, attr = await fs.create(ROOT_INO, name, 0o644, os.O_WRONLY, 0, 0)
    for start, end in writes:
        await fs.write(fh, start, data[start:end])
    await fs.release(fh)
    assert await fs.flush_all()
    return attr.ino


def _appends(size: int, step: int = MiB) -> list[tuple[int, int]]:
    return [(i, min(i + step, size)) for i in range(0, size, step)]


async def test_an_appended_file_is_committed_from_its_stream(repo: Repository,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FileSystem(repo)
    whole = _whole_ingests(repo, monkeypatch)
    data = _content(21 * MiB + 12345)  # several read windows, and a short last chunk
    ino = await _write(fs, b"big", data, _appends(len(data)))
    assert whole == []
    version = repo.catalog.version_at(ino)
    assert version is not None and version.size == len(data)
    assert version.hash == codec.chunk_id(data)
    assert b"".join(repo.iter_content(version)) == data
    # The same chunks as a commit of the finished file would have made (dedup across both ways).
    reference = repo.chunks.ingest_bytes(data, lambda cid: False)
    assert reference.chunks == version.chunks
    await fs.close()
    assert repo.catalog.check() == []


async def test_a_write_not_at_the_end_or_a_truncate_gives_the_stream_up(repo: Repository,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FileSystem(repo)
    whole = _whole_ingests(repo, monkeypatch)
    data = bytearray(_content(6 * MiB))
    writes = _appends(len(data))
    data[MiB : MiB + 10] = b"rewritten!"
    fh, attr = await fs.create(ROOT_INO, b"f", 0o644, os.O_WRONLY, 0, 0)
    for start, end in writes:
        await fs.write(fh, start, bytes(data[start:end]))
    assert fs._files.live[attr.ino].staging.stream is not None  # type: ignore[union-attr]
    await fs.write(fh, MiB, b"rewritten!")
    assert fs._files.live[attr.ino].staging.stream is None  # type: ignore[union-attr]
    await fs.release(fh)
    assert await fs.flush_all()
    assert len(whole) == 1
    version = repo.catalog.version_at(attr.ino)
    assert version is not None and b"".join(repo.iter_content(version)) == bytes(data)

    # Truncated to empty and appended again: streamed again.
    fh = await fs.open(attr.ino, os.O_WRONLY | os.O_TRUNC)
    for start, end in writes:
        await fs.write(fh, start, bytes(data[start:end]))
    await fs.setattr(attr.ino, size=4 * MiB)  # ... and truncated: given up
    await fs.release(fh)
    assert await fs.flush_all()
    assert len(whole) == 2
    version = repo.catalog.version_at(attr.ino)
    assert version is not None and b"".join(repo.iter_content(version)) == bytes(data[: 4 * MiB])
    await fs.close()
    assert repo.catalog.check() == []


async def test_a_pack_deleted_while_streaming_makes_the_commit_ingest_whole(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = FileSystem(repo)
    whole = _whole_ingests(repo, monkeypatch)
    data = _content(5 * MiB)
    fh, attr = await fs.create(ROOT_INO, b"f", 0o644, os.O_WRONLY, 0, 0)
    for start, end in _appends(len(data)):
        await fs.write(fh, start, data[start:end])
    repo.chunks.generation += 1  # as gc does before it deletes a pack (it may have held streamed chunks)
    await fs.release(fh)
    assert await fs.flush_all()
    assert len(whole) == 1
    version = repo.catalog.version_at(attr.ino)
    assert version is not None and b"".join(repo.iter_content(version)) == data
    await fs.close()
