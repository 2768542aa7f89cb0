"""Moving a store to another remote (or to none): what it believed of the old one is forgotten.

A store's *remote bookkeeping* is what it believes its remote holds: the catalog's remote_packs rows,
and under `STORE/sync/` the manifest of its newest checkpoint, the markers of uploads that may have
landed, and the last sync failure. All of it describes one remote. Kept under another, the uploader
would skip the packs the new prefix lacks and publish a delta checkpoint whose chain names the old
prefix's objects: a clone of the new prefix would fail. So `change_remote` forgets it, and the next sync
uploads every pack and a base checkpoint to the new remote, as to an empty one (a new prefix that
already holds a checkpoint is another store's: the sync refuses it with RemoteConflict).

A pack only the old remote holds (evicted by the cache limit, or never fetched by a lazy clone) would
be lost to the store with that bookkeeping: `change_remote` refuses while there is one, and `fetch_remote_only`
downloads them first. The old remote's objects are left as they are.

Order, for a crash in between: the files under sync/ go first, then the catalog changes in one
transaction. A store killed between the two still names the old remote, without a manifest: its next
sync there stops with RemoteConflict (nothing is published, nothing lost), and running the same
`vfs remote set` again completes the move.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from vfs.config import RemoteConfig
from vfs.errors import StoreError, UsageError
from vfs.repository import Repository
from vfs.sync import checkpoint
from vfs.types import PackNo


def remote_only(repo: Repository) -> dict[PackNo, int]:
    """pack -> size of the packs some chunk uses that only the remote holds (absent locally)."""
    local = set(repo.chunks.local_packs())
    rows = repo.catalog.remote_packs()
    return {pack: rows[pack][1] if pack in rows else 0 for pack in sorted(repo.catalog.packs_in_use() - local)}


def fetch_remote_only(repo: Repository, progress: Callable[[int, int], None] | None = None) -> int:
    """Download every pack only the current remote holds (see `remote_only`); the bytes fetched.

    Raises:
        MissingChunk: a pack is neither local nor on the remote.
        BackendError: the remote cannot be read.
    """
    missing = remote_only(repo)
    if not missing:
        return 0
    if repo.fetcher is None:
        raise UsageError(f"{len(missing)} pack(s) of store {repo.path} are missing and it has no remote to fetch"
                         f" them from; run 'vfs fsck {repo.path}'")
    total, done = sum(missing.values()), 0
    for pack, size in missing.items():
        repo.fetcher(pack)
        done += size
        if progress is not None:
            progress(done, total)
    return done


def change_remote(repo: Repository, new: RemoteConfig | None) -> None:
    """Make `new` the store's remote (None: no remote), forgetting the old remote's bookkeeping.

    The caller holds the store's lock (no daemon is syncing it).

    Raises:
        UsageError: some pack only the old remote holds (nothing is changed; `fetch_remote_only` first).
    """
    missing = remote_only(repo)
    if missing:
        raise UsageError(f"{remote_only_message(repo, missing)}: download them before changing the remote")
    state = repo.path / checkpoint.STATE_DIR
    try:
        shutil.rmtree(state)
    except FileNotFoundError:
        pass
    except OSError as e:  # kept, the old manifest would make the new remote's first checkpoint a bad delta
        raise StoreError(f"cannot remove {state}: {e.strerror}; the remote is unchanged") from None
    repo.catalog.replace_remote(None if new is None else new.to_json())


def remote_only_message(repo: Repository, missing: dict[PackNo, int]) -> str:
    """What `missing` (from `remote_only`) means, for an error message."""
    where = repo.remote.url if repo.remote is not None else "the old remote"
    return (f"{len(missing)} pack(s) ({sum(missing.values())} bytes) of this store are only in {where}"
            " (evicted, or a lazy clone)")
