"""vfs key list | add | passwd | remove KEY_ID: the passphrases and key files that open an encrypted volume.

Each is a key object wrapping the volume's master key (docs/design.md, "Encryption"); changing them
re-encrypts and re-uploads no data. `add` and `passwd` take the new passphrase from --new-password-file,
--new-key-file (a key file, created when it does not exist yet) or the terminal (asked twice); the
current one comes from the usual sources (--password-file, --key-file, VFS_PASSWORD_FILE, ...).
`passwd` adds the new key, then removes the one the current passphrase opened. Works while the store
is mounted (key objects are files of their own, not in the catalog).
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfs.cli.common import add_store_options, passphrase_of, store_of
from vfs.cli.output import emit
from vfs.config import RemoteConfig
from vfs.errors import UsageError
from vfs.passwords import get_new_passphrase

if TYPE_CHECKING:
    from vfs.backend import Backend
    from vfs.store.keys import KeyObject, VolumeKeys


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("key", help="list, add, change or remove an encrypted volume's keys")
    keys = p.add_subparsers(dest="key_command", required=True, metavar="COMMAND")
    listing = keys.add_parser("list", help="the volume's keys")
    add = keys.add_parser("add", help="add a passphrase or key file that opens the volume")
    passwd = keys.add_parser("passwd", help="change the passphrase you open the volume with")
    remove = keys.add_parser("remove", help="remove a key (never the last one)")
    remove.add_argument("key_id", metavar="KEY_ID", help="as 'vfs key list' shows it")
    for q in (listing, add, passwd, remove):
        add_store_options(q)
        q.add_argument("--json", action="store_true", help="print the answer as JSON")
    for q in (add, passwd):
        q.add_argument("--new-password-file", type=Path, metavar="FILE", help="read the new passphrase from FILE")
        q.add_argument("--new-key-file", type=Path, metavar="FILE",
                       help="open the volume with this key file (created if it does not exist)")
    listing.set_defaults(run=run_list)
    add.set_defaults(run=run_add)
    passwd.set_defaults(run=run_passwd)
    remove.set_defaults(run=run_remove)


def _volume(args: argparse.Namespace) -> tuple[Path, str, RemoteConfig | None]:
    """(store, master key id, remote config or None) of an encrypted store."""
    from vfs.compose import open_repository

    store = store_of(args)
    with open_repository(store, lock=False) as repo:
        if repo.encryption is None:
            raise UsageError(f"store {store} is not encrypted: it has no keys")
        return store, repo.encryption["key_id"], repo.remote


def _unlocked(args: argparse.Namespace) -> tuple[Path, VolumeKeys, KeyObject, Backend | None]:
    """(store, keys, the key object the passphrase opened, the remote's backend or None: the caller closes
    it, `_closing`)."""
    from vfs.store.keyring import unlock
    from vfs.sync.remote import open_remote_backend

    store, key_id, remote = _volume(args)
    keys, used = unlock(store, passphrase_of(args)(), key_id)
    return store, keys, used, open_remote_backend(remote) if remote is not None else None


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def run_list(args: argparse.Namespace) -> int:
    from vfs.maintenance.keys import list_keys

    store, key_id, _remote = _volume(args)
    found = list_keys(store)
    answer = {"store": str(store), "master_key_id": key_id,
              "keys": [{k: v for k, v in asdict(info).items() if k != "in_use"} for info in found]}
    emit(args, answer, lambda a: "\n".join(f"{i.id}  {_when(i.created_ns)}  {i.kdf}" for i in found))
    return 0


def _add(args: argparse.Namespace) -> tuple[Path, KeyObject, KeyObject, Backend | None]:
    """Add a key for the new passphrase: (store, the key the current one opened, the key added, backend)."""
    from vfs.maintenance.keys import add_key

    store, keys, used, backend = _unlocked(args)
    try:
        new = get_new_passphrase(password_file=args.new_password_file, key_file=args.new_key_file)
        return store, used, add_key(store, keys, new.secret, backend), backend
    except BaseException:
        with _closing(backend):
            raise


def _closing(backend: Backend | None) -> contextlib.AbstractContextManager[object]:
    return backend if backend is not None else contextlib.nullcontext()


def run_add(args: argparse.Namespace) -> int:
    store, _used, added, backend = _add(args)
    if backend is not None:
        backend.close()
    emit(args, {"store": str(store), "added": added.id}, lambda a: f"added key {a['added']}")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    from vfs.maintenance.keys import remove_key

    store, used, added, backend = _add(args)
    with _closing(backend):
        remove_key(store, used.id, added, backend)
    emit(args, {"store": str(store), "added": added.id, "removed": used.id},
         lambda a: f"changed key {a['removed']} to {a['added']}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from vfs.maintenance.keys import remove_key

    store, _keys, used, backend = _unlocked(args)
    with _closing(backend):
        remove_key(store, args.key_id, used, backend)
    emit(args, {"store": str(store), "removed": args.key_id}, lambda a: f"removed key {a['removed']}")
    return 0
