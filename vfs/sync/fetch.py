"""Lazy fetch: a pack the store lacks locally is fetched whole from the remote on first read.

`PackFetcher` is the `fetch_pack` callable the repository gives its chunk store. A fetched pack is
checked against its BLAKE3 name before it is used (and each chunk read from it against its own id,
as always); a corrupt object is reported with its key and never served.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from vfs.backend import Backend
from vfs.config import RemoteConfig
from vfs.errors import CorruptChunk, MissingChunk
from vfs.sync.remote import open_remote_backend
from vfs.sync.transfer import download_pack
from vfs.types import PackNo

if TYPE_CHECKING:
    from vfs.repository import Repository

log = logging.getLogger(__name__)


class PackFetcher:
    """Callable: pack number -> path of the local pack file, fetched from the remote if needed."""

    def __init__(self, repo: Repository, remote: RemoteConfig) -> None:
        self._repo = repo
        self._remote = remote
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        self._pack_locks: dict[int, threading.Lock] = {}
        self.fetched_bytes = 0

    @property
    def backend(self) -> Backend:
        """The remote, opened on first use (boto3 is slow to import; most reads never need it)."""
        with self._lock:
            if self._backend is None:
                self._backend = open_remote_backend(self._remote)
            return self._backend

    def __call__(self, pack: PackNo) -> Path:
        path = self._repo.chunks.pack_file(pack)
        with self._lock:
            lock = self._pack_locks.setdefault(pack, threading.Lock())
        with lock:  # one download per pack, however many readers want it
            if path.exists():
                return path
            row = self._repo.catalog.remote_pack(pack)
            if row is None:
                raise MissingChunk(f"pack {pack} is missing locally ({path}) and the remote does not hold it")
            key, size = row
            try:
                self.fetched_bytes += download_pack(self.backend, key, size, path)
            except CorruptChunk as e:
                log.error("%s", e)
                raise
            log.debug("fetched pack %d (%s, %d bytes)", pack, key, size)
            return path

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
