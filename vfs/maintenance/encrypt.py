"""Encrypting a plain store in place (`vfs remote set --encrypt`), before its remote holds any of it.

Two steps, each safe to interrupt and repeat: `begin` makes the store an encrypted one (a master key,
its key object, `meta.encryption`; from then on every new pack is sealed and the uploader refuses any
pack that is not), and `seal_packs`, run on the store reopened with its keys, copies the entries of
every plain pack into sealed packs (verified, as gc's repack: damage is never copied), moves their rows
and deletes the plain pack. A store whose remote already holds its data is refused: sealing now would
not take the plain objects back out of the bucket.
"""

from __future__ import annotations

from vfs.errors import StoreError, UsageError
from vfs.repository import Repository, start_encryption
from vfs.store.keys import KdfParams
from vfs.sync.checkpoint import Manifest


def begin(repo: Repository, passphrase: bytes, kdf: KdfParams | None = None) -> None:
    """Make the (plain, locked) store encrypted; reopen it with the passphrase before `seal_packs`."""
    if repo.encryption is not None:
        return
    if repo.catalog.remote_packs() or Manifest.load(repo.path) is not None:
        raise UsageError(f"store {repo.path} has synced to its remote already: encrypting it now would leave its"
                         " plain objects there; clone its files into a new store made with 'vfs init --encrypt'")
    start_encryption(repo.path, repo.catalog, passphrase, kdf)


def seal_packs(repo: Repository) -> int:
    """Rewrite every plain pack of the (encrypted, unlocked, locked) store sealed; the packs rewritten."""
    if repo.keys is None:
        raise StoreError(f"store {repo.path} must be opened with its passphrase to seal its packs")
    done = 0
    for pack in repo.chunks.local_packs():
        if repo.chunks.is_sealed(pack):
            continue
        entries = repo.catalog.chunk_locations_in(pack)
        copied = repo.chunks.rewrite(pack, entries)
        if copied.damaged:
            raise StoreError(f"pack {pack} has damaged entries, left as they are ({copied.damaged[0]}); "
                             "run 'vfs fsck --repair' first")
        repo.chunks.sync()  # the sealed copies are durable before any row points to them
        repo.catalog.move_chunks(copied.moves)
        repo.chunks.delete(pack)
        done += 1
    return done
