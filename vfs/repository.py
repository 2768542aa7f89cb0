"""Repository: one store directory, its catalog and its chunk store, opened together.

Layout of a store directory:

    catalog.db    the SQLite catalog (WAL mode: also catalog.db-wal, catalog.db-shm)
    packs/        pack files (see vfs.store.packs)
    staging/      work files of open files (owned by the filesystem layer)
    lock          flock()ed by the one process that has the store open; holds its pid

Everything in it is its owner's alone (see vfs.fsutil): created so, and tightened when a process opens
the store for writing and finds a path others may read (a store made by an older vfs, a careless chmod).

Write ordering (the invariant that makes a killed process harmless): chunk bytes are appended to a
pack and fsync'd, and only then does one catalog transaction record their locations together with
the version that uses them. A crash in between leaves unreferenced pack bytes, never a version that
points to missing data.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from vfs.backend.base import Backend
from vfs.catalog import Catalog, Version
from vfs.catalog.catalog import CATALOG_FILE
from vfs.config import RemoteConfig, StoreConfig
from vfs.errors import NotAStore, StoreError, StoreLocked
from vfs.fsutil import PRIVATE_DIR, PRIVATE_FILE, private_dir, tighten
from vfs.store import ChunkStore, ContentReader, Ingested
from vfs.store.keyring import save_key_object, unlock
from vfs.store.keys import KdfParams, VolumeKeys
from vfs.store.packs import pack_path
from vfs.types import InodeNo, PackNo

log = logging.getLogger(__name__)


class PackFetch(Protocol):
    """Where a store with a remote gets the packs it lacks locally (a lazy clone's, evicted ones): whole
    (`vfs fetch`, moving to another remote) or a range at a time (reads)."""

    def __call__(self, pack: PackNo) -> Path: ...  # the local pack file, fetched whole if it was missing
    def read_range(self, pack: PackNo, offset: int, length: int) -> tuple[bytes, str]: ...  # see RemoteRange
    @property
    def backend(self) -> Backend: ...  # the remote, opened on first use (`vfs fetch` prefetches through it)
    def close(self) -> None: ...


# Gives an encrypted store's passphrase when it is needed (asked only if the store turns out encrypted).
PassphraseSource = Callable[[], bytes]

# Makes a store's PackFetch from its remote, the local path of a pack, and the remote's (key, size) of one.
# Given by the composition module (vfs.compose: vfs.sync.fetch.remote_fetcher), so that this layer
# does not import the sync layer above it.
FetcherFactory = Callable[
    [RemoteConfig, Callable[[PackNo], Path], Callable[[PackNo], tuple[str, int] | None]], PackFetch
]


class Repository:
    def __init__(
        self, path: Path, catalog: Catalog, lock_fd: int | None, threads: int | None = None, *,
        fetcher: FetcherFactory | None = None, keys: VolumeKeys | None = None,
    ) -> None:
        """Without `fetcher`, a pack missing locally is MissingChunk, even when the store has a remote.

        `keys`: an encrypted store's (see `open`); without them its catalog can be read, its data not.
        """
        self.path = path
        self.catalog = catalog
        self._lock_fd = lock_fd
        self.config = StoreConfig(**json.loads(catalog.meta("config")))
        self.store_id = catalog.meta("store_id")
        self.keys = keys
        self.remote: RemoteConfig | None = None
        self.fetcher: PackFetch | None = None
        remote = catalog.meta_or_none("remote")
        if remote is not None:
            self.remote = RemoteConfig.from_json(remote)
            if fetcher is not None:
                # A store with a remote reads the packs it lacks (lazy clone, evicted) from there.
                self.fetcher = fetcher(self.remote, functools.partial(pack_path, path / "packs"), catalog.remote_pack)
        cache_size = catalog.meta_or_none("cache_size")
        # Packs the store lacks are read entry by entry, through partial packs (vfs.store.partial).
        self.chunks = ChunkStore(path / "packs", self.config, threads=threads,
                                 sealed_upto=catalog.max_remote_pack(),
                                 fetch_range=None if self.fetcher is None else self.fetcher.read_range,
                                 keys=keys, encrypted=self.encryption is not None,
                                 cache_size=int(cache_size) if cache_size else None)
        self.staging = path / "staging"
        private_dir(self.staging)
        self.reader = ContentReader(self.chunks, catalog.locate_all)

    @property
    def encryption(self) -> dict[str, str] | None:
        """An encrypted store's `meta.encryption` (`key_id`, `cipher`), None for a plain one."""
        return encryption_of(self.catalog)

    @classmethod
    def init(cls, path: Path | str, config: StoreConfig | None = None, *, passphrase: bytes | None = None,
             kdf: KdfParams | None = None) -> Repository:
        """Create a new, empty store at `path` (which may exist if empty); with `passphrase`, an encrypted
        one (a new master key, wrapped for it with Argon2id at `kdf`'s cost)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise StoreError(f"cannot create a store at {path}: it exists and is not an empty directory")
        private_dir(path, parents=True)
        os.chmod(path, PRIVATE_DIR)  # an empty directory given by the caller may be open to others
        lock_fd = _lock(path)
        config = config or StoreConfig()
        catalog = Catalog.initialize(path / CATALOG_FILE, uuid.uuid4().hex, asdict(config), os.getuid(), os.getgid(),
                                     cache_live_attrs=True)  # the lock holder is the catalog's only writer
        keys = start_encryption(path, catalog, passphrase, kdf) if passphrase is not None else None
        return cls(path, catalog, lock_fd, keys=keys)

    @classmethod
    def open(
        cls, path: Path | str, *, lock: bool = True, threads: int | None = None, fetcher: FetcherFactory | None = None,
        passphrase: PassphraseSource | None = None, keys: VolumeKeys | None = None,
    ) -> Repository:
        """Open an existing store; with `lock`, refuse if another live process has it open.

        An encrypted store is unlocked with `passphrase()` (called only then), or given its `keys`
        (a clone, which has just opened them); without either, its catalog can be read but reading or
        writing data is KeyRequired. WrongPassphrase if the passphrase opens no key.

        Production code opens a store through `vfs.compose.open_repository`, which gives the `fetcher`
        that reads missing packs from the remote; without one, such a pack is MissingChunk.
        """
        path = Path(path)
        if not (path / CATALOG_FILE).is_file():
            raise NotAStore(f"{path} is not a vfs store (no {CATALOG_FILE}); create one with 'vfs init {path}'")
        lock_fd = _lock(path) if lock else None
        catalog = None
        try:
            # The lock holder is the catalog's only writer: it may keep live attributes in memory.
            catalog = Catalog.open(path / CATALOG_FILE, cache_live_attrs=lock_fd is not None)
            if lock_fd is not None:
                _make_private(path)  # a store, as its catalog just showed
                catalog.replay_edits()  # a killed writer's batched tree edits (vfs.catalog.journal)
            encryption = encryption_of(catalog)
            if keys is not None and (encryption is None or encryption["key_id"] != keys.key_id):
                raise StoreError(f"store {path} is not encrypted with the key it was opened with")
            if encryption is not None and keys is None and passphrase is not None:
                keys = unlock(path, passphrase(), encryption["key_id"])[0]
            return cls(path, catalog, lock_fd, threads=threads, fetcher=fetcher, keys=keys)
        except BaseException:
            if catalog is not None:
                catalog.close()
            if lock_fd is not None:
                os.close(lock_fd)
            raise

    def close(self) -> None:
        self.chunks.close()  # first: its read-ahead may still be fetching through the fetcher
        if self.fetcher is not None:
            self.fetcher.close()
        self.catalog.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------
    def ingest(self, staging_file: Path | str) -> Ingested:
        """Store a staging file's chunks durably (thread-safe; the slow half of a commit)."""
        return self.chunks.ingest(staging_file, self.catalog.has_chunk)

    def commit_file(
        self, ino: InodeNo, staging_file: Path | str, *, mtime_ns: int | None = None, origin: str = "write",
        durable: bool = False,
    ) -> Version:
        """Commit a finished staging file as the next version of `ino`."""
        return self.commit_files([(ino, staging_file, mtime_ns, None)], origin=origin, durable=durable)[0]

    def commit_files(
        self, items: list[tuple[InodeNo, Path | str, int | None, int | None]], *, origin: str = "write",
        durable: bool = False,
    ) -> list[Version]:
        """Commit many staging files (inode, path, mtime, time saved; see Catalog.commit_versions) as new
        versions: one pack fsync and one catalog transaction."""
        ingested = [(ino, self.chunks.ingest(path, self.catalog.has_chunk, sync=False), mtime, saved)
                    for ino, path, mtime, saved in items]
        self.chunks.sync()  # data durable before the catalog points to it
        return self.catalog.commit_versions(ingested, origin=origin, durable=durable)

    def commit_bytes(self, ino: InodeNo, data: bytes, *, origin: str = "write") -> Version:
        ingested = self.chunks.ingest_bytes(data, self.catalog.has_chunk)
        return self.catalog.commit_version(ino, ingested, origin=origin)

    # -- reading (see vfs.store.reader) -----------------------------------------------------------
    def read(self, version: Version, offset: int, size: int) -> bytes:
        """Bytes [offset, offset+size) of a version (short at the end of the content). May wait on the
        disk or the remote: call from a thread."""
        data = self.reader.read(version, offset, size, wait=True)
        assert data is not None
        return data

    def read_ready(self, version: Version, offset: int, size: int) -> bytes | None:
        """`read` if every chunk it needs is decoded in memory already, or is one small chunk of a local
        pack (one short pread); else None. Never waits on the network or a long read, so an event
        loop may call it and send only misses to a thread."""
        return self.reader.read(version, offset, size, wait=False)

    def iter_content(self, version: Version) -> Iterator[bytes]:
        """The whole content of a version, chunk by chunk (decoded in parallel)."""
        return self.reader.iter_content(version)


def start_encryption(path: Path, catalog: Catalog, passphrase: bytes, kdf: KdfParams | None = None) -> VolumeKeys:
    """Make the store at `path` an encrypted one: a new master key, its key object for `passphrase`, and
    `meta.encryption`. Packs written from then on are sealed; ones written before are not (see
    `vfs.maintenance.encrypt`). The caller holds the store's lock."""
    keys = VolumeKeys.generate()
    # The key object before the catalog says "encrypted": such a store always has one.
    save_key_object(path, keys.wrap_for(passphrase, kdf))
    catalog.set_meta("encryption", json.dumps({"key_id": keys.key_id, "cipher": "aes-256-gcm"}))
    return keys


def encryption_of(catalog: Catalog) -> dict[str, str] | None:
    """A catalog's `meta.encryption`, None for a plain store."""
    value = catalog.meta_or_none("encryption")
    if value is None:
        return None
    found = json.loads(value)
    if not isinstance(found, dict) or not isinstance(found.get("key_id"), str):
        raise StoreError(f"the catalog's encryption setting is damaged: {value!r}")
    return found


def _make_private(path: Path) -> None:
    """Tighten a store that others may read, saying so (SQLite makes -wal and -shm files afresh with the
    database file's mode, so they stay private after this too)."""
    changed = tighten(path)
    if changed:
        log.warning("store %s could be read by other users: made %d path(s) in it private to its owner (%s, ...)",
                    path, len(changed), changed[0].relative_to(path.parent))


def _lock(path: Path) -> int:
    fd = os.open(path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise StoreLocked(f"store {path} is in use by pid {holder} (is it mounted already?)") from None
        raise
    # The kernel drops a flock when its holder dies, so a killed daemon's lock is simply taken over.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
