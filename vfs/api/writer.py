"""How the API changes a volume: through the daemon when the store is mounted, else holding its lock.

A mounted store's daemon owns the store's lock and caches: every change goes through its control socket
(`DaemonWriter`), so the mount shows it at once and nothing fights over the lock. An unmounted store is
changed by this process holding the lock for the duration of each change (`StoreWriter`), as the daemon
or `vfs restore` would. Which one applies is decided at each change: a store may be mounted or
unmounted between two calls.

Both drive the same code: `vfs.maintenance.service.Maintenance` (put), `vfs.fs.snapshots`,
`vfs.fs.restore` and `vfs.maintenance.put.remove`, the daemon's control server calling them there.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from vfs.api.progress import Advance
from vfs.compose import open_repository
from vfs.control.client import call, daemon_running
from vfs.fs import snapshots
from vfs.fs.locate import locate, show
from vfs.fs.restore import Change, restore
from vfs.maintenance.put import PutItem, PutResult
from vfs.maintenance.put import remove as remove_path
from vfs.repository import Repository
from vfs.store.keys import VolumeKeys

# Items sent to the daemon in one request, at most: a request is one line of at most 1 MiB
# (vfs.control.protocol.MAX_LINE), and progress is shown between requests.
DAEMON_BATCH_FILES = 256
DAEMON_BATCH_BYTES = 64 << 20


class Writer(Protocol):
    def put(self, items: Sequence[PutItem], sizes: Sequence[int], *, checksum: bool, advance: Advance) -> PutResult: ...
    def remove(self, path: tuple[bytes, ...], *, recursive: bool) -> list[str]: ...
    def snapshot(self, name: str | None) -> str: ...
    def delete_snapshot(self, name: str) -> None: ...
    def restore(self, names: tuple[bytes, ...], spec: str | None, to: tuple[bytes, ...] | None, *,
                delete: bool, dry_run: bool) -> list[Change]: ...


def writer_for(store: Path, keys: VolumeKeys | None = None) -> Writer:
    """The daemon's writer when `store` is mounted (it holds an encrypted store's keys), else one that
    takes the store's lock (and writes to an encrypted one with `keys`, unlocked when it was opened)."""
    return DaemonWriter(store) if daemon_running(store) else StoreWriter(store, keys)


class DaemonWriter:
    """Changes through the running daemon's control socket."""

    def __init__(self, store: Path) -> None:
        self.store = store

    def put(self, items: Sequence[PutItem], sizes: Sequence[int], *, checksum: bool, advance: Advance) -> PutResult:
        result = PutResult()
        start = 0
        while start < len(items):
            end, nbytes = start, 0
            while end < len(items) and end - start < DAEMON_BATCH_FILES and (end == start or
                                                                              nbytes < DAEMON_BATCH_BYTES):
                nbytes += sizes[end]
                end += 1
            answer = call(self.store, {"op": "put", "items": [i.as_json() for i in items[start:end]],
                                       "uid": os.getuid(), "gid": os.getgid(), "checksum": checksum})
            result.add(PutResult.from_json(answer))
            advance(nbytes, sum(not i.is_dir for i in items[start:end]))
            start = end
        return result

    def remove(self, path: tuple[bytes, ...], *, recursive: bool) -> list[str]:
        return list(call(self.store, {"op": "remove", "path": show(path), "recursive": recursive})["removed"])

    def snapshot(self, name: str | None) -> str:
        return str(call(self.store, {"op": "snapshot_create", "name": name})["name"])

    def delete_snapshot(self, name: str) -> None:
        call(self.store, {"op": "snapshot_delete", "name": name})

    def restore(self, names: tuple[bytes, ...], spec: str | None, to: tuple[bytes, ...] | None, *,
                delete: bool, dry_run: bool) -> list[Change]:
        answer = call(self.store, {"op": "restore", "path": show(names), "spec": spec,
                                   "to": None if to is None else show(to), "delete": delete, "dry_run": dry_run})
        return [Change(c["action"], c["path"], c["detail"]) for c in answer["changes"]]


class StoreWriter:
    """Changes to an unmounted store, its lock held for each (StoreLocked if another process holds it).

    An encrypted store is reopened with the keys the volume unlocked: no passphrase is asked again and
    no key derivation (a quarter of a second) is paid per change.
    """

    def __init__(self, store: Path, keys: VolumeKeys | None = None) -> None:
        self.store = store
        self._keys = keys

    def _opened(self, *, lock: bool = True) -> AbstractContextManager[Repository]:
        """The store, open (and locked with `lock`) for one change."""
        return open_repository(self.store, lock=lock, keys=self._keys)

    def put(self, items: Sequence[PutItem], sizes: Sequence[int], *, checksum: bool, advance: Advance) -> PutResult:
        import trio  # only to write: `import vfs` and reading stay free of it

        from vfs.maintenance.service import Maintenance

        with self._opened() as repo:
            service = Maintenance(repo)
            run: Any = functools.partial(service.put, list(items), uid=os.getuid(), gid=os.getgid(),
                                         checksum=checksum, progress=advance)
            result: PutResult = trio.run(run)
        return result

    def remove(self, path: tuple[bytes, ...], *, recursive: bool) -> list[str]:
        with self._opened() as repo:
            return remove_path(repo.catalog, path, recursive=recursive)

    def snapshot(self, name: str | None) -> str:
        with self._opened() as repo:
            return snapshots.take(repo.catalog, name).name

    def delete_snapshot(self, name: str) -> None:
        with self._opened() as repo:
            snapshots.delete(repo.catalog, name)

    def restore(self, names: tuple[bytes, ...], spec: str | None, to: tuple[bytes, ...] | None, *,
                delete: bool, dry_run: bool) -> list[Change]:
        with self._opened(lock=not dry_run) as repo:
            return list(restore(repo, locate(repo.catalog, names, spec), to, delete=delete, dry_run=dry_run))


class HeldStoreWriter(StoreWriter):
    """Changes to a store this process holds open and locked already (a writable `s3://` volume's cache)."""

    def __init__(self, repo: Repository) -> None:
        super().__init__(repo.path)
        self._repo = repo

    def _opened(self, *, lock: bool = True) -> AbstractContextManager[Repository]:
        return nullcontext(self._repo)  # not closed after the change: the volume keeps it
