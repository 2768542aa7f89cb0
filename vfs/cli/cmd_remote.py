"""vfs remote set STORE URL | show [STORE | --mount MNT] | unset STORE: a store's remote (s3://BUCKET/PREFIX).

The remote is kept in the catalog (URL, endpoint, region, and the local cache size; never a credential:
those come from boto3's standard chain, the environment, a profile or an instance role, and `show`
prints none). `set` and `unset` change an unmounted store; a store starts syncing at its next mount.

Moving a store to another URL, or unsetting its remote, forgets what it believed the old remote holds
(`vfs.sync.rebind`): the next sync uploads everything to the new remote. Packs only the old remote
holds (evicted, a lazy clone) must be downloaded first (--fetch). The old remote's objects are left
alone. Changing only --endpoint-url or --region keeps that bookkeeping: it must be the same bucket,
reached another way.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from vfs.cli.common import add_passphrase_options, add_store_options, new_passphrase, passphrase_of, store_of
from vfs.cli.output import emit
from vfs.cli.progress import Progress
from vfs.config import RemoteConfig
from vfs.errors import StoreLocked, UsageError

if TYPE_CHECKING:
    from vfs.repository import Repository


def add_remote_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint-url", metavar="URL", help="an S3-compatible endpoint (MinIO, Garage, Ceph)")
    p.add_argument("--region", metavar="R", help="the bucket's region")
    p.add_argument("--cache-size", metavar="SIZE",
                   help="keep at most SIZE of pack data locally (e.g. 10G), evicting what the remote holds")


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in units else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise UsageError(f"size must look like 500M or 10G, not {text!r}") from None
    if value < 0:
        raise UsageError(f"size must be non-negative, not {text!r}")
    return int(value * units[unit])


def remote_from_args(args: argparse.Namespace) -> RemoteConfig:
    from vfs.sync.remote import remote_config

    return remote_config(args.url, args.endpoint_url, args.region)


def apply(repo: Repository, args: argparse.Namespace) -> None:
    cache_size = None if args.cache_size is None else parse_size(args.cache_size)  # refused before any write
    repo.catalog.set_meta("remote", remote_from_args(args).to_json())
    if cache_size is not None:
        repo.catalog.set_meta("cache_size", str(cache_size))


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("remote", help="show, set or remove the remote a store replicates to")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s: argparse.ArgumentParser = actions.add_parser(
        "set", help="set (or replace) the store's remote",
        description="Set the remote STORE replicates to. Replacing it with another URL forgets what the store"
                    " synced to the old one: the next sync uploads everything to the new remote (which must be"
                    " empty or this volume's), and the old remote's objects are left alone. Changing only"
                    " --endpoint-url or --region keeps that state (the same bucket, reached another way).")
    s.add_argument("store", type=Path, help="the store (not mounted)")
    s.add_argument("url", metavar="s3://BUCKET/PREFIX")
    add_remote_options(s)
    add_fetch_option(s)
    s.add_argument("--no-check", action="store_true", help="do not check that the bucket answers")
    s.add_argument("--encrypt", action="store_true",
                   help="encrypt the store first, sealing the packs it has (only before it has synced anywhere);"
                        " asks for a new passphrase unless --password-file or --key-file (made if missing)")
    add_passphrase_options(s)
    s.add_argument("--json", action="store_true", help="print the store's remote as set, as JSON")
    s.set_defaults(run=run_set)

    sh: argparse.ArgumentParser = actions.add_parser(
        "show", help="print the store's remote: URL, endpoint, region, cache size (never a credential)")
    add_store_options(sh, positional=True)
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(run=run_show)

    u: argparse.ArgumentParser = actions.add_parser(
        "unset", help="remove the store's remote (the store keeps its data)",
        description="Remove STORE's remote and its cache size: the store stops syncing, keeps every version,"
                    " and forgets what it had synced (setting a remote again uploads everything). The remote's"
                    " objects are left alone.")
    u.add_argument("store", type=Path, help="the store (not mounted)")
    add_fetch_option(u)
    u.add_argument("--json", action="store_true", help="print the remote removed (null: none) as JSON")
    u.set_defaults(run=run_unset)


def add_fetch_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fetch", action="store_true",
                   help="first download the packs only the current remote holds (evicted, or a lazy clone);"
                        " without it, the command refuses while there are such packs")


def _open_unmounted(store: Path) -> Repository:
    from vfs.compose import open_repository

    try:
        return open_repository(store)
    except StoreLocked as e:
        raise StoreLocked(f"{e}; unmount it first: a store's remote changes only while it is unmounted") from None


def _leave_remote(repo: Repository, new: RemoteConfig | None, fetch: bool) -> None:
    """Forget the current remote's bookkeeping (see vfs.sync.rebind), after fetching what only it holds."""
    from vfs.sync import rebind
    missing = rebind.remote_only(repo)
    if missing and not fetch:
        raise UsageError(f"{rebind.remote_only_message(repo, missing)}: add --fetch to download them first")
    if missing:
        bar = Progress("fetch")
        try:
            rebind.fetch_remote_only(repo, bar)
        finally:
            bar.close()
    rebind.change_remote(repo, new)


def run_set(args: argparse.Namespace) -> int:
    from vfs.sync.remote import check_reachable

    new = remote_from_args(args)
    if args.cache_size is not None:
        parse_size(args.cache_size)  # checked before anything is written
    if not args.no_check:
        check_reachable(new)
    if args.encrypt:
        _encrypt(args)
    with _open_unmounted(args.store) as repo:
        old = repo.remote
        if old is not None and old.url != new.url:
            _leave_remote(repo, new, args.fetch)
        apply(repo, args)
    previous = None if old is None else old.url
    moved = previous not in (None, new.url)
    note = f" (was {previous}: the next sync uploads everything to the new remote; the old one is left as it is)"
    answer = {"store": str(args.store), "url": new.url, "endpoint_url": new.endpoint_url, "region": new.region,
              "previous_url": previous, "sync_state_reset": moved}
    emit(args, answer, lambda a: f"remote of {args.store} set to {args.url}" + (note if moved else ""))
    return 0


def _encrypt(args: argparse.Namespace) -> None:
    """Make the store encrypted (if it is not yet) and seal every plain pack it has (vfs.maintenance.encrypt)."""
    from vfs.compose import open_repository
    from vfs.maintenance import encrypt

    secret = None
    with _open_unmounted(args.store) as repo:
        if repo.encryption is None:
            secret = new_passphrase(args)
            encrypt.begin(repo, secret)
    unlock = (lambda: secret) if secret is not None else passphrase_of(args)
    with open_repository(args.store, passphrase=unlock) as repo:
        sealed = encrypt.seal_packs(repo)
    if sealed:
        print(f"vfs: sealed {sealed} pack(s) of {args.store}", file=sys.stderr)


def run_unset(args: argparse.Namespace) -> int:
    with _open_unmounted(args.store) as repo:
        old = repo.remote
        if old is not None:
            _leave_remote(repo, None, args.fetch)
            repo.catalog.set_meta("cache_size", None)
    answer = {"store": str(args.store), "removed_url": None if old is None else old.url}
    emit(args, answer, lambda a: f"{args.store} has no remote" if old is None else
         f"remote {old.url} removed from {args.store}: the store keeps its data and {old.url} its objects;"
         " what was synced is forgotten (a remote set later gets everything uploaded)")
    return 0


def describe(repo: Repository) -> dict[str, Any]:
    """What `remote show` prints (JSON-ready): never a credential, not even one written into a URL."""
    r = repo.remote
    cache = repo.catalog.meta_or_none("cache_size")
    return {"store": str(repo.path), "url": _without_userinfo(r.url) if r else None,
            "endpoint_url": _without_userinfo(r.endpoint_url) if r and r.endpoint_url else None,
            "region": r.region if r else None, "cache_size": int(cache) if cache is not None else None}


def _without_userinfo(url: str) -> str:
    """`url` with any user:password@ replaced by '***@' (boto3 takes none, but a user may have typed one)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def run_show(args: argparse.Namespace) -> int:
    from vfs.compose import open_repository

    with open_repository(store_of(args), lock=False) as repo:
        info = describe(repo)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if info["url"] is None:
        print("no remote")
        return 0
    cache = info["cache_size"]
    print(f"store:       {info['store']}")
    print(f"remote:      {info['url']}")
    print(f"endpoint:    {info['endpoint_url'] or 'AWS (the default)'}")
    print(f"region:      {info['region'] or 'from the environment or profile'}")
    print(f"cache size:  {'no limit' if cache is None else f'{cache} bytes'}")
    print("credentials: not stored: boto3 finds them (environment, profile, instance role)")
    return 0
