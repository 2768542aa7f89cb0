"""The composition module: builds the objects of a store and of a mount, and wires them together.

The CLI (and the Python API to come) start here, and nothing below imports it (an import-linter
contract in pyproject.toml says so). Collaborators are passed to constructors: the repository gets
the factory of its pack fetcher (`vfs.sync.fetch.remote_fetcher`), so that a store with a remote reads
the packs it lacks from there, while neither module imports the other.

Opening a store is here; the mount's wiring is in `vfs.compose.mount`, imported only by the daemon
(it brings trio, pyfuse3 and the control server: a fifth of a second that `vfs log` need not pay).
"""

from __future__ import annotations

from pathlib import Path

from vfs.config import StoreConfig
from vfs.repository import PassphraseSource, Repository
from vfs.store.keys import KdfParams, VolumeKeys
from vfs.sync.fetch import remote_fetcher


def open_repository(path: Path | str, *, lock: bool = True, threads: int | None = None,
                    passphrase: PassphraseSource | None = None, keys: VolumeKeys | None = None) -> Repository:
    """Open an existing store (see Repository.open); one with a remote fetches the packs it lacks, an
    encrypted one is unlocked with `passphrase()` when given, or given the `keys` unlocked before."""
    return Repository.open(path, lock=lock, threads=threads, fetcher=remote_fetcher, passphrase=passphrase,
                           keys=keys)


def init_repository(path: Path | str, config: StoreConfig | None = None, *, passphrase: bytes | None = None,
                    kdf: KdfParams | None = None) -> Repository:
    """Create a new, empty store at `path` and open it (a new store has no remote yet); encrypted when
    given a passphrase."""
    return Repository.init(path, config, passphrase=passphrase, kdf=kdf)
