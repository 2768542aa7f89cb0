"""The control socket: server in the daemon's trio loop, client as the CLI uses it."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from vfs.control.client import call, daemon_running
from vfs.control.protocol import SOCKET_NAME
from vfs.control.server import ControlServer
from vfs.errors import Exists, UsageError, VfsError
from vfs.fs.filesystem import FileSystem
from vfs.maintenance.service import Maintenance
from vfs.repository import Repository
from vfs.types import ROOT_INO


@pytest.fixture
async def served(repo: Repository) -> AsyncIterator[FileSystem]:
    """A FileSystem with its control server running."""
    fs = FileSystem(repo)
    async with trio.open_nursery() as nursery:
        await nursery.start(fs.run)
        await nursery.start(ControlServer(fs, Maintenance.of_mount(fs, None)).run)
        yield fs
        nursery.cancel_scope.cancel()
    await fs.close()


async def ask(store: Path, request: dict[str, object]) -> dict[str, object]:
    return await trio.to_thread.run_sync(call, store, request)


async def test_socket_is_private_and_answers_ping(served: FileSystem) -> None:
    path = served.repo.path / SOCKET_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    answer = await ask(served.repo.path, {"op": "ping"})
    assert answer["ok"] is True and answer["pid"] == os.getpid()
    assert await trio.to_thread.run_sync(daemon_running, served.repo.path)


async def test_errors_come_back_as_their_class_and_exit_code(served: FileSystem) -> None:
    store = served.repo.path
    await ask(store, {"op": "snapshot_create", "name": "one"})
    with pytest.raises(Exists, match="exists already") as e:
        await ask(store, {"op": "snapshot_create", "name": "one"})
    assert e.value.exit_code == 1
    for bad in ({"op": "snapshot_create", "name": "12"}, {"op": "nonsense"}, {"op": "restore", "path": 3}):
        with pytest.raises(UsageError) as u:
            await ask(store, bad)
        assert u.value.exit_code == 2


async def test_malformed_lines_get_an_error_and_the_connection_goes_on(served: FileSystem) -> None:
    def talk() -> list[bytes]:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(served.repo.path / SOCKET_NAME))
            s.sendall(b"not json\n[1]\n" + b'{"op": "ping"}\n')
            f = s.makefile("rb")
            return [f.readline() for _ in range(3)]

    lines = await trio.to_thread.run_sync(talk)
    assert b'"ok": false' in lines[0] and b'"exit_code": 2' in lines[0]
    assert b'"ok": false' in lines[1]
    assert b'"ok": true' in lines[2]


async def test_snapshot_includes_data_of_a_file_still_being_written(served: FileSystem) -> None:
    attr = served.catalog.create(ROOT_INO, b"open.txt", 0o100644, 0, 0)
    fh = await served.open(attr.ino, os.O_WRONLY)
    await served.write(fh, 0, b"not closed yet")
    answer = await ask(served.repo.path, {"op": "snapshot_create", "name": "while-open"})
    version = served.catalog.version_at(attr.ino, int(answer["commit"]))  # type: ignore[call-overload]
    assert version is not None and version.size == len(b"not closed yet")
    await served.release(fh)


async def test_stale_socket_is_replaced_and_removed_at_stop(repo: Repository) -> None:
    path = repo.path / SOCKET_NAME
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # left by a killed daemon: nobody listens
    stale.close()
    assert not daemon_running(repo.path)
    with pytest.raises(VfsError, match="cannot talk to the daemon"):
        call(repo.path, {"op": "ping"})
    fs = FileSystem(repo)
    async with trio.open_nursery() as nursery:
        server = ControlServer(fs, Maintenance.of_mount(fs, None))
        await nursery.start(server.run)
        assert (await ask(repo.path, {"op": "ping"}))["ok"]
        server.stop()
    assert not path.exists()
    await fs.close()
