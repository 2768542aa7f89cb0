"""vfs init [STORE] [--remote s3://BUCKET/PREFIX ...] [--encrypt]: create an empty store.

Everything is checked before the store is made: the path (an existing file on the way is refused),
the remote's URL, unless --no-check that its bucket answers, and with --encrypt the new passphrase
(asked twice on a terminal) or key file (`--key-file FILE` that does not exist yet is created).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vfs.cli import cmd_remote
from vfs.cli.common import add_passphrase_options, default_store, new_passphrase
from vfs.cli.output import emit
from vfs.errors import StoreError, UsageError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("init", help="create a new, empty store")
    p.add_argument("store", nargs="?", type=Path,
                   help="store directory (default: $VFS_HOME or ~/.local/share/vfs/default)")
    p.add_argument("--remote", dest="url", metavar="s3://BUCKET/PREFIX", help="replicate the store to this remote")
    cmd_remote.add_remote_options(p)
    p.add_argument("--no-check", action="store_true", help="with --remote: do not check that the bucket answers")
    p.add_argument("--encrypt", action="store_true",
                   help="encrypt the volume (its data here and everything it puts in the bucket) with a passphrase")
    add_passphrase_options(p)
    p.set_defaults(run=run)
    p.add_argument("--json", action="store_true", help="print the new store as JSON")


def run(args: argparse.Namespace) -> int:
    store = args.store or default_store()
    check_creatable(store)
    if args.url is not None:
        from vfs.sync.remote import check_reachable

        remote = cmd_remote.remote_from_args(args)
        if args.cache_size is not None:
            cmd_remote.parse_size(args.cache_size)
        if not args.no_check:
            check_reachable(remote)
    if not args.encrypt and (args.password_file or args.key_file):
        raise UsageError("--password-file and --key-file set the passphrase of an encrypted volume: add --encrypt")
    passphrase = new_passphrase(args) if args.encrypt else None
    from vfs.compose import init_repository

    try:
        with init_repository(store, passphrase=passphrase) as repo:
            if args.url is not None:
                cmd_remote.apply(repo, args)
    except OSError as e:  # what check_creatable cannot foresee (a full disk, a race)
        raise StoreError(f"cannot create a store at {store}: {e.strerror or e}") from None
    answer = {"store": str(Path(store).absolute()), "remote": args.url, "endpoint_url": args.endpoint_url,
              "encrypted": args.encrypt}
    emit(args, answer, lambda a: f"initialized empty {'encrypted ' if args.encrypt else ''}store at {store}")
    return 0


def check_creatable(store: Path) -> None:
    """StoreError unless a store can be made at `store`: before any request is sent or directory made."""
    try:
        if store.exists():
            if not store.is_dir() or any(store.iterdir()):
                raise StoreError(f"cannot create a store at {store}: it exists and is not an empty directory")
            return
        above = store.absolute().parent
        while not above.exists():
            above = above.parent
        if not above.is_dir():
            raise StoreError(f"cannot create a store at {store}: {above} is not a directory")
    except OSError as e:  # a directory we may not read
        raise StoreError(f"cannot create a store at {store}: {e.strerror or e}") from None
