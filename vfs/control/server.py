"""Server of the control socket, run by the mount daemon next to the filesystem.

Requests run on the trio loop, like the kernel's: catalog transactions are short, and a restore
checkpoints between the files it changes. Whatever changes content goes through here while the
store is mounted, so the daemon can first commit open files (`flush_all`) and afterwards make the
kernel drop what it cached (`fs.invalidate`). Prune, gc, sync and status are answered by the
maintenance service (`vfs.maintenance.service`), the same one the CLI uses on an unmounted store;
a handler here only parses the request. See `vfs.control.protocol` for the wire format.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from vfs import crashpoints
from vfs.catalog import LIVE
from vfs.control.protocol import MAX_LINE, decode, encode, error_answer, socket_path
from vfs.errors import Busy, ReadOnly, UsageError, VfsError
from vfs.fs import restore as restoring
from vfs.fs import snapshots
from vfs.fs.filesystem import FileSystem
from vfs.fs.locate import locate, lookup_at, volume_names
from vfs.maintenance import put as putting
from vfs.maintenance import retention
from vfs.maintenance.service import Maintenance
from vfs.sync.follow import Follower
from vfs.types import InodeNo

log = logging.getLogger(__name__)


# (directory, name, inode it named) of removed entries; inode 0 for a name added (see `_adding_names`)
Names = list[tuple[InodeNo, bytes, InodeNo]]


async def _no_kernel_names(names: Names) -> None:
    """`forget_names` without a kernel: nothing is cached."""
    await trio.lowlevel.checkpoint()


class ControlServer:
    """Answers the requests of the control socket, in the daemon's trio loop.

    Args:
        maintenance: the writer's maintenance service; None for a follower's mount, which has `follower`
            instead and answers only the requests that change nothing (the others are ReadOnly).
        forget_names: makes the kernel drop its cached entries of these names, removed (a restore with
            delete removes them by a path other than the kernel's own unlinks) or added (the kernel may
            remember them as missing); awaited after the change.
    """

    def __init__(
        self, fs: FileSystem, maintenance: Maintenance | None, *,
        forget_names: Callable[[Names], Awaitable[None]] = _no_kernel_names, follower: Follower | None = None,
    ) -> None:
        self.fs = fs
        self._maintenance = maintenance
        self.follower = follower
        self._forget_names = forget_names
        self.path = socket_path(fs.repo.path)
        self._cancel = trio.CancelScope()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the socket until cancelled or `stop()`; the socket file is removed on the way out."""
        # Any socket file left now is stale: this process holds the store's lock.
        self.path.unlink(missing_ok=True)
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bind under a temporary name and rename, so the socket never exists with a wider mode.
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        try:
            await sock.bind(str(tmp))
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.path)
            sock.listen(16)
        except BaseException:
            sock.close()
            tmp.unlink(missing_ok=True)
            raise
        listener = trio.SocketListener(sock)
        try:
            with self._cancel:
                async with listener, trio.open_nursery() as nursery:
                    task_status.started()
                    while True:
                        stream = await listener.accept()
                        nursery.start_soon(self._serve_connection, stream)
        finally:
            self.path.unlink(missing_ok=True)

    def stop(self) -> None:
        self._cancel.cancel()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        buf = bytearray()
        async with stream:
            try:
                while True:
                    while b"\n" not in buf:
                        if len(buf) > MAX_LINE:
                            await stream.send_all(encode(error_answer(UsageError("control request too long"))))
                            return
                        data = await stream.receive_some(65536)
                        if not data:
                            return
                        buf += data
                    line, _, rest = bytes(buf).partition(b"\n")
                    buf = bytearray(rest)
                    await stream.send_all(encode(await self._answer(line)))
            except trio.BrokenResourceError:
                pass  # the client went away

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = decode(line)
            op = request.get("op")
            handler = _HANDLERS.get(op) if isinstance(op, str) else None
            if handler is None:
                raise UsageError(f"unknown control request {op!r}")
            if self.follower is not None and op not in _FOLLOWER_OPS:
                raise ReadOnly(self.fs.read_only or "read-only")
            return {"ok": True, **await handler(self, request)}
        except VfsError as e:
            return error_answer(e)
        except Exception as e:
            log.exception("control request failed")
            return error_answer(VfsError(f"internal error in the daemon: {e}"))

    # -- requests --------------------------------------------------------------------------------
    async def _ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid(), "store": str(self.fs.repo.path)}

    async def _flush(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.fs.commit_open_files()
        return {}

    async def _snapshot_create(self, request: dict[str, Any]) -> dict[str, Any]:
        # FileSystem.snapshot commits what open files hold first: it belongs in the snapshot.
        snap = await self.fs.snapshot(_optional_str(request, "name"))
        return {"name": snap.name, "commit": snap.commit_no, "time_ns": snap.time_ns}

    async def _snapshot_delete(self, request: dict[str, Any]) -> dict[str, Any]:
        name = _optional_str(request, "name")
        if name is None:
            raise UsageError("snapshot_delete needs a name")
        snapshots.delete(self.fs.catalog, name)
        return {}

    async def _prune(self, request: dict[str, Any]) -> dict[str, Any]:
        policy = retention.Policy.from_json(request.get("policy") or {})
        return await self.maintenance.prune(policy, dry_run=bool(request.get("dry_run")),
                                            step=_crash_points("prune"))

    async def _gc(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.maintenance.gc(dry_run=bool(request.get("dry_run")), remote=bool(request.get("remote", True)),
                                         step=_crash_points("gc"))

    @asynccontextmanager
    async def _adding_names(self) -> AsyncIterator[None]:
        """Around a request that may add names: the kernel forgets what it cached of each name added (it
        may remember it as missing, `vfs.fuse.operations.missing_entry`), so that it shows once the
        request has answered. (Names the kernel itself added meanwhile are among them: forgetting those
        costs a lookup.)"""
        first = self.fs.catalog.last_dirent_id()
        try:
            yield
        finally:
            added = self.fs.catalog.names_added_after(first)
            await self._forget_names([(parent, name, InodeNo(0)) for parent, name, _ in added])

    async def _restore(self, request: dict[str, Any]) -> dict[str, Any]:
        path = _optional_str(request, "path")
        if path is None:
            raise UsageError("restore needs a path")
        spec = _optional_str(request, "spec")
        to = _optional_str(request, "to")
        changes = []
        removed: Names = []
        replaced: Names = []

        def changed(ino: InodeNo) -> None:
            self.fs.invalidate(ino)
            found = self._entry_of(ino)
            if found is not None:  # the kernel must forget it, or it keeps the size it caches: see _put
                replaced.append(found)

        def remove(parent: InodeNo, name: bytes, is_dir: bool) -> None:
            # Through the filesystem, as the kernel's unlink goes: it lets go of a file open for reading.
            ino = self.fs.catalog.lookup(parent, name)
            assert ino is not None
            (self.fs.rmdir if is_dir else self.fs.unlink)(parent, name)
            removed.append((parent, name, ino))

        # Not while prune or gc run: they could delete the versions and chunks being restored.
        async with self.maintenance.lock, self._adding_names():
            await self._flush(request)  # compare with, and build on, what the files hold now
            source = locate(self.fs.catalog, volume_names(path), spec)
            dest = None if to is None else volume_names(to)
            try:
                for change in restoring.restore(
                    self.fs.repo, source, dest, delete=bool(request.get("delete")),
                    dry_run=bool(request.get("dry_run")), before_change=self._refuse_if_open,
                    after_change=changed, remove=remove,
                ):
                    changes.append(change)
                    await trio.lowlevel.checkpoint()
            finally:
                await self._forget_names(removed + replaced)
        return {"changes": [{"action": c.action, "path": c.path, "detail": c.detail} for c in changes]}

    def _entry_of(self, ino: InodeNo) -> tuple[InodeNo, bytes, InodeNo] | None:
        """(directory, name, ino) of a name `ino` has now, if any."""
        path = self.fs.catalog.path_of(ino)
        if not path:
            return None
        *dirs, name = path.split(b"/")
        parent = lookup_at(self.fs.catalog, tuple(dirs), LIVE)
        return None if parent is None else (parent, name, ino)

    def _refuse_if_open(self, ino: InodeNo) -> None:
        # A file with a staging file reads from it and would commit it over the restored version.
        if self.fs.is_being_written(ino):
            raise Busy("the file is open for writing in the mount; close it and restore again")

    async def _put(self, request: dict[str, Any]) -> dict[str, Any]:
        """Local files the daemon reads (its user's: the socket is theirs alone) become versions; see
        `vfs.maintenance.put`. Their bytes are read, hashed and stored in threads."""
        items = request.get("items")
        if not isinstance(items, list):
            raise UsageError("put needs a list of items")
        uid, gid = request.get("uid", os.getuid()), request.get("gid", os.getgid())
        if not (isinstance(uid, int) and isinstance(gid, int)):
            raise UsageError("uid and gid must be numbers")
        async with self._adding_names():
            result = await self.maintenance.put([putting.PutItem.from_json(i) for i in items], uid=uid, gid=gid,
                                                checksum=bool(request.get("checksum")))
        # Invalidating a file's pages and attributes is not enough: with the writeback cache the kernel
        # keeps the size it caches. Dropping its entries lets it forget the inode (unless open) and look
        # the file up afresh.
        await self._forget_names(result.replaced)
        return result.as_json()

    async def _remove(self, request: dict[str, Any]) -> dict[str, Any]:
        """Remove a path (recursively when asked) as the kernel's unlink and rmdir would: a new commit
        each, the history stays."""
        path = _optional_str(request, "path")
        if path is None:
            raise UsageError("remove needs a path")
        removed: Names = []

        def unlink(parent: InodeNo, name: bytes, is_dir: bool) -> None:
            ino = self.fs.catalog.lookup(parent, name)
            assert ino is not None
            (self.fs.rmdir if is_dir else self.fs.unlink)(parent, name)
            removed.append((parent, name, ino))

        async with self.maintenance.lock:
            try:
                paths = putting.remove(self.fs.catalog, volume_names(path), recursive=bool(request.get("recursive")),
                                       unlink=unlink)
            finally:
                await self._forget_names(removed)
        return {"removed": paths}

    async def _sync(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start a full sync round; with "wait", await it up to "timeout" seconds (300)."""
        timeout = request.get("timeout")
        wait = (float(timeout) if isinstance(timeout, (int, float)) else 300.0) if request.get("wait") else None
        return await self.maintenance.request_sync(wait_seconds=wait)

    async def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.follower is not None:
            return {"follower": self.follower.status()}
        return self.maintenance.status()

    async def _refresh(self, request: dict[str, Any]) -> dict[str, Any]:
        """A follower's refresh, now; its answer once it is done."""
        if self.follower is None:
            raise UsageError(f"{self.fs.repo.path} is mounted as the writer, not as a follower: it has nothing"
                             " to refresh")
        return await self.follower.refresh()

    @property
    def maintenance(self) -> Maintenance:
        assert self._maintenance is not None  # a follower answers no request that needs it (_FOLLOWER_OPS)
        return self._maintenance


def _crash_points(request: str) -> Callable[[str], None]:
    """The `step` callback of a maintenance request: its steps are crash points for tests (vfs.crashpoints)."""
    return lambda what: crashpoints.reach(f"{request}:{what}")


def _optional_str(request: dict[str, Any], key: str) -> str | None:
    value = request.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{key} must be a string")
    return value


_HANDLERS = {
    "ping": ControlServer._ping,
    "flush": ControlServer._flush,
    "snapshot_create": ControlServer._snapshot_create,
    "snapshot_delete": ControlServer._snapshot_delete,
    "restore": ControlServer._restore,
    "put": ControlServer._put,
    "remove": ControlServer._remove,
    "prune": ControlServer._prune,
    "gc": ControlServer._gc,
    "sync": ControlServer._sync,
    "status": ControlServer._status,
    "refresh": ControlServer._refresh,
}
_FOLLOWER_OPS = {"ping", "flush", "status", "refresh"}
