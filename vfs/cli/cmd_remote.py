"""vfs remote set [STORE] URL: give a store a remote to replicate to (s3://BUCKET/PREFIX).

The remote is kept in the catalog (URL, endpoint, region; never a credential: those come from
boto3's standard chain, the environment, a profile or an instance role). A mounted store starts
syncing at its next mount.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vfs.compose import open_repository
from vfs.config import RemoteConfig
from vfs.errors import UsageError
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
    p: argparse.ArgumentParser = sub.add_parser("remote", help="set the remote a store replicates to")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    s: argparse.ArgumentParser = actions.add_parser("set", help="set (or replace) the store's remote")
    s.add_argument("store", type=Path, help="the store (not mounted)")
    s.add_argument("url", metavar="s3://BUCKET/PREFIX")
    add_remote_options(s)
    s.add_argument("--no-check", action="store_true", help="do not check that the bucket answers")
    s.set_defaults(run=run_set)


def run_set(args: argparse.Namespace) -> int:
    from vfs.sync.remote import check_reachable

    remote = remote_from_args(args)
    with open_repository(args.store) as repo:
        if not args.no_check:
            check_reachable(remote)
        apply(repo, args)
    print(f"remote of {args.store} set to {args.url}")
    return 0
