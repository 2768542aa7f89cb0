"""Lazy fetch: what a store lacks locally is read from the remote, a range at a time or a pack whole.

`PackFetcher` is what a store with a remote is built with (the composition module, `vfs.compose`,
hands `remote_fetcher` to the repository, which makes one when the store has a remote). Reads use
`read_range`: the bytes of a range of a pack object, which the chunk store checks entry by entry
before it keeps or serves them (`vfs.store.partial`). Whole packs (`vfs remote set --fetch`) are
checked against their BLAKE3 name before they are written; a corrupt object is reported with its key
and never served.

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
from vfs.errors import CorruptChunk, MissingChunk
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

    def _row(self, pack: PackNo) -> tuple[str, int]:
        row = self._remote_pack(pack)
        if row is None:
            raise MissingChunk(f"pack {pack} is missing locally ({self._pack_file(pack)}) and the remote does not"
                               " hold it")
        return row

    def read_range(self, pack: PackNo, offset: int, length: int) -> tuple[bytes, str]:
        """Bytes [offset, offset+length) of the remote's object of `pack`, and a name for them in messages
        (the object's key and the remote). Not checked here: the caller checks each entry in them.

        Raises:
            MissingChunk: the remote does not hold the pack (the remote is then not opened).
            CorruptChunk: the range lies past the object's end (by its recorded size, or as the remote
                answered): the catalog and the object disagree.
            BackendError: the remote cannot be read.
        """
        key, size = self._row(pack)
        backend = self.backend
        where = f"remote object {key} ({backend.url})"
        if offset + length > size:
            raise CorruptChunk(f"{where}: bytes {offset}-{offset + length} asked for lie past its end ({size} bytes)")
        data = backend.get_range(key, offset, length)
        if len(data) != length:
            raise CorruptChunk(f"{where}: ends at {offset + len(data)}, before its recorded size of {size} bytes")
        log.debug("fetched %d bytes at %d of pack %d (%s)", length, offset, pack, key)
        return data, where

    def __call__(self, pack: PackNo) -> Path:
        """The local pack file of `pack`, fetched whole and verified if it is missing."""
        path = self._pack_file(pack)
        with self._lock:
            lock = self._pack_locks.setdefault(pack, threading.Lock())
        with lock:  # one download per pack, however many readers want it
            if path.exists():
                return path
            key, size = self._row(pack)
            download_pack(self.backend, key, size, path)  # CorruptChunk: the caller reports it (the mount logs it)
            log.debug("fetched pack %d (%s, %d bytes)", pack, key, size)
            return path

    def close(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
