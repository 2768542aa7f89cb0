"""Lazy fetch: a pack the store lacks locally is fetched whole from the remote on first read.

`PackFetcher` is the `fetch_pack` callable a store's chunk reader is built with (the composition
module, `vfs.compose`, hands `remote_fetcher` to the repository, which makes one when the store has a
remote). A fetched pack is checked against its BLAKE3 name before it is used (and each chunk read from
it against its own id, as always); a corrupt object is reported with its key and never served.

It knows nothing of the repository: it is given where a pack lives locally, where it lives on the
remote, and how to open the remote.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from vfs.backend import Backend
from vfs.config import RemoteConfig
from vfs.errors import MissingChunk
from vfs.sync.remote import open_remote_backend
from vfs.sync.transfer import download_pack
from vfs.types import PackNo

log = logging.getLogger(__name__)

RemotePackLookup = Callable[[PackNo], tuple[str, int] | None]  # pack -> (key, size) on the remote, if there


def remote_fetcher(remote: RemoteConfig, pack_file: Callable[[PackNo], Path],
                   remote_pack: RemotePackLookup) -> PackFetcher:
    """A fetcher of packs from `remote` (the factory `vfs.repository.Repository` is given)."""
    opener = functools.partial(open_remote_backend, remote)
    return PackFetcher(pack_file, remote_pack, opener)


class PackFetcher:
    """Callable: pack number -> path of the local pack file, fetched from the remote if needed.

    Args:
        pack_file: where a pack lives locally (whether it is there or not).
        remote_pack: the remote key and size of a pack, None when the remote does not hold it.
        open_backend: opens the remote, on the first fetch.
    """

    def __init__(self, pack_file: Callable[[PackNo], Path], remote_pack: RemotePackLookup,
                 open_backend: Callable[[], Backend]) -> None:
        self._pack_file = pack_file
        self._remote_pack = remote_pack
        self._open_backend = open_backend
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        self._pack_locks: dict[int, threading.Lock] = {}

    @property
    def backend(self) -> Backend:
        """The remote, opened on first use (boto3 is slow to import; most reads never need it)."""
        with self._lock:
            if self._backend is None:
                self._backend = self._open_backend()
            return self._backend

    def __call__(self, pack: PackNo) -> Path:
        path = self._pack_file(pack)
        with self._lock:
            lock = self._pack_locks.setdefault(pack, threading.Lock())
        with lock:  # one download per pack, however many readers want it
            if path.exists():
                return path
            row = self._remote_pack(pack)
            if row is None:
                raise MissingChunk(f"pack {pack} is missing locally ({path}) and the remote does not hold it")
            key, size = row
            download_pack(self.backend, key, size, path)  # CorruptChunk: the caller reports it (the mount logs it)
            log.debug("fetched pack %d (%s, %d bytes)", pack, key, size)
            return path

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
