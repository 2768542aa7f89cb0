"""The control socket's put and remove: the daemon ingests in threads and commits on its loop."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.lowlevel

from vfs.control.client import call
from vfs.control.server import ControlServer
from vfs.errors import IsADirectory, NotFound
from vfs.fs.filesystem import FileSystem
from vfs.maintenance.service import Maintenance
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo


class Served:
    def __init__(self, fs: FileSystem, invalidated: list[InodeNo]) -> None:
        self.fs = fs
        self.invalidated = invalidated

    async def ask(self, request: dict[str, object]) -> dict[str, object]:
        return await trio.to_thread.run_sync(call, self.fs.repo.path, request)


@pytest.fixture
async def served(repo: Repository) -> AsyncIterator[Served]:
    invalidated: list[InodeNo] = []
    fs = FileSystem(repo, invalidate=invalidated.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(fs.run)
        await nursery.start(ControlServer(fs, Maintenance.of_mount(fs, None)).run)
        yield Served(fs, invalidated)
        nursery.cancel_scope.cancel()
    await fs.close()


def items(*pairs: tuple[Path, str]) -> list[dict[str, object]]:
    return [{"source": str(src), "dest": dest} for src, dest in pairs]


async def test_put_makes_versions_the_mount_sees_and_unchanged_files_cost_nothing(
    served: Served, tmp_path: Path,
) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.bin"
    a.write_bytes(b"alpha")
    b.write_bytes(os.urandom(200_000))
    answer = await served.ask({"op": "put", "items": items((a, "d/a.txt"), (b, "d/b.bin"))})
    assert answer["created"] == ["d/", "d/a.txt", "d/b.bin"] and int(answer["stored_bytes"]) > 200_000  # type: ignore[call-overload]
    fs = served.fs
    d = fs.catalog.lookup(ROOT_INO, b"d")
    assert d is not None and ROOT_INO in served.invalidated and d in served.invalidated
    ino = fs.catalog.lookup(d, b"a.txt")
    assert ino is not None
    fh = await fs.open(ino, os.O_RDONLY)
    assert await fs.read(fh, 0, 100) == b"alpha"  # what the kernel would be answered
    await fs.release(fh)
    again = await served.ask({"op": "put", "items": items((a, "d/a.txt"), (b, "d/b.bin"))})
    assert again["unchanged"] == ["d/a.txt", "d/b.bin"] and again["stored_bytes"] == 0
    a.write_bytes(b"ALPHA")
    served.invalidated.clear()
    third = await served.ask({"op": "put", "items": items((a, "d/a.txt"))})
    assert third["updated"] == ["d/a.txt"] and served.invalidated == [ino]
    assert [v.origin for v in fs.catalog.versions(ino)] == ["put", "put"]


async def test_a_file_open_for_writing_in_the_mount_is_skipped(served: Served, tmp_path: Path) -> None:
    fs = served.fs
    attr = fs.catalog.create(ROOT_INO, b"busy", 0o100644, 0, 0)
    fh = await fs.open(attr.ino, os.O_WRONLY)
    await fs.write(fh, 0, b"being written")
    src = tmp_path / "src"
    src.write_bytes(b"from outside")
    answer = await served.ask({"op": "put", "items": items((src, "busy"))})
    assert answer["skipped"] == [["busy", "open for writing in the mount"]] and answer["updated"] == []
    await fs.release(fh)
    await fs.flush_all()
    version = fs.catalog.version_at(attr.ino)
    assert version is not None and version.size == len(b"being written")


async def test_the_loop_keeps_answering_while_a_big_file_is_ingested(served: Served, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(48 << 20))
    ticks = 0
    done = False

    async def tick() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(tick)
        await served.ask({"op": "put", "items": items((big, "big"))})
        done = True
    # Hashing and compressing 48 MiB on the loop would leave it a handful of checkpoints at most.
    assert ticks > 100


async def test_remove_and_its_errors(served: Served, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    await served.ask({"op": "put", "items": items((f, "d/e/f"), (f, "d/g"))})
    with pytest.raises(IsADirectory, match="d is a directory: remove it recursively"):
        await served.ask({"op": "remove", "path": "d"})
    answer = await served.ask({"op": "remove", "path": "d", "recursive": True})
    assert answer["removed"] == ["d/e/f", "d/e/", "d/g", "d/"]
    with pytest.raises(NotFound, match="d does not exist in the volume"):
        await served.ask({"op": "remove", "path": "d"})
    with pytest.raises(NotFound, match="no such file"):
        await served.ask({"op": "put", "items": items((tmp_path / "missing", "m"))})
