"""Server of the control socket, run by the mount daemon next to the filesystem.

Requests run on the trio loop, like the kernel's: catalog transactions are short, and a restore
checkpoints between the files it changes. Whatever changes content goes through here while the
store is mounted, so the daemon can first commit open files (`flush_all`) and afterwards make the
kernel drop what it cached (`fs.invalidate`). See `vfs.control.protocol` for the wire format.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import trio

from vfs import crashpoints
from vfs.control.protocol import MAX_LINE, decode, encode, error_answer, socket_path
from vfs.errors import BackendError, Busy, StoreError, UsageError, VfsError
from vfs.fs import restore as restoring
from vfs.fs import snapshots
from vfs.fs.filesystem import FileSystem
from vfs.fs.locate import locate, volume_names
from vfs.maintenance import gc as garbage
from vfs.maintenance import prune as pruning
from vfs.maintenance import remote as remote_gc
from vfs.maintenance import retention
from vfs.sync.uploader import Uploader
from vfs.types import InodeNo

log = logging.getLogger(__name__)


class ControlServer:
    def __init__(self, fs: FileSystem, uploader: Uploader | None = None) -> None:
        self.fs = fs
        self.uploader = uploader  # None: the store has no remote
        self.path = socket_path(fs.repo.path)
        self._cancel = trio.CancelScope()
        self._maintenance = trio.Lock()  # one prune, gc or restore at a time

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
        await self.fs.flush_kernel()  # dirty pages in the kernel's writeback cache first
        if not await self.fs.flush_all():
            raise VfsError("some open files could not be committed; see the daemon's log")
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
        """Plan (and unless dry_run, apply) a retention policy; files open in the mount keep their content."""
        policy = retention.Policy.from_json(request.get("policy") or {})
        async with self._maintenance:
            await self._flush(request)  # what open files hold is the latest version: never pruned
            keep = self.fs.catalog.current_version_ids_of(self.fs.open_inodes())
            plan = await trio.to_thread.run_sync(
                lambda: pruning.plan(self.fs.catalog, policy, keep_versions=keep))
            answer = plan.as_json()
            if not request.get("dry_run"):
                step = _crash_points("prune")
                step("apply")
                answer["deleted"], answer["deleted_bytes"] = await trio.to_thread.run_sync(
                    lambda: pruning.apply(self.fs.catalog, plan, step=step))
        return answer

    async def _gc(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run gc with the committer paused: no entry is appended meanwhile that gc could take for garbage."""
        async with self._maintenance:
            await self._flush(request)
            async with self.fs.commits_paused():
                result = await trio.to_thread.run_sync(
                    lambda: garbage.collect(self.fs.repo, dry_run=bool(request.get("dry_run")),
                                            step=_crash_points("gc")))
            answer = result.as_json()
            if self.uploader is not None and request.get("remote", True) and not request.get("dry_run"):
                try:
                    answer["remote"] = (await self._gc_remote(self.uploader)).as_json()
                except (BackendError, StoreError, OSError) as e:
                    answer["remote_error"] = str(e)
        return answer

    async def _gc_remote(self, uploader: Uploader) -> remote_gc.RemoteGcResult:
        """Remote gc with uploads held off: forget dead pack rows, upload a checkpoint, delete objects."""
        repo = self.fs.repo
        result = remote_gc.RemoteGcResult()
        async with uploader.lock:
            result.packs_forgotten = await trio.to_thread.run_sync(remote_gc.forget_dead, repo)
            await uploader.round_locked(force=True)
            # Not abandoned on cancel: the uploader stays held off until no deletion can be in flight.
            await trio.to_thread.run_sync(lambda: remote_gc.sweep(repo, uploader.backend, result))
        return result

    async def _restore(self, request: dict[str, Any]) -> dict[str, Any]:
        path = _optional_str(request, "path")
        if path is None:
            raise UsageError("restore needs a path")
        spec = _optional_str(request, "spec")
        to = _optional_str(request, "to")
        changes = []
        # Not while prune or gc run: they could delete the versions and chunks being restored.
        async with self._maintenance:
            await self._flush(request)  # compare with, and build on, what the files hold now
            source = locate(self.fs.catalog, volume_names(path), spec)
            dest = None if to is None else volume_names(to)
            for change in restoring.restore(self.fs.repo, source, dest, before_change=self._refuse_if_open,
                                            after_change=self.fs.invalidate):
                changes.append(change)
                await trio.lowlevel.checkpoint()
        return {"changes": [{"action": c.action, "path": c.path, "detail": c.detail} for c in changes]}

    def _refuse_if_open(self, ino: InodeNo) -> None:
        # A file with a staging file reads from it and would commit it over the restored version.
        if self.fs.is_being_written(ino):
            raise Busy("the file is open for writing in the mount; close it and restore again")

    async def _sync(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start a full sync round (open files committed first); with "wait", await it up to "timeout"."""
        uploader = self._need_uploader()
        await self._flush(request)  # what open files hold belongs to "everything up to now"
        target = uploader.request()
        if request.get("wait"):
            timeout = request.get("timeout")
            with trio.move_on_after(float(timeout) if isinstance(timeout, (int, float)) else 300.0):
                await uploader.wait_round(target)
        return {"target": target, "synced": uploader.done >= target, **uploader.status()}

    async def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"mounted": True, **self._need_uploader().status()}

    def _need_uploader(self) -> Uploader:
        if self.uploader is None:
            raise UsageError(f"store {self.fs.repo.path} has no remote; set one with 'vfs remote set'")
        return self.uploader


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
    "prune": ControlServer._prune,
    "gc": ControlServer._gc,
    "sync": ControlServer._sync,
    "status": ControlServer._status,
}
