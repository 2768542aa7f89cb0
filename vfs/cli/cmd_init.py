"""vfs init [STORE] [--remote s3://BUCKET/PREFIX ...]: create an empty store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vfs.cli import cmd_remote
from vfs.cli.common import default_store
from vfs.cli.output import emit
from vfs.compose import init_repository


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("init", help="create a new, empty store")
    p.add_argument("store", nargs="?", type=Path,
                   help="store directory (default: $VFS_HOME or ~/.local/share/vfs/default)")
    p.add_argument("--remote", dest="url", metavar="s3://BUCKET/PREFIX", help="replicate the store to this remote")
    cmd_remote.add_remote_options(p)
    p.set_defaults(run=run)
    p.add_argument("--json", action="store_true", help="print the new store as JSON")


def run(args: argparse.Namespace) -> int:
    store = args.store or default_store()
    with init_repository(store) as repo:
        if args.url is not None:
            cmd_remote.apply(repo, args)
    answer = {"store": str(Path(store).absolute()), "remote": args.url, "endpoint_url": args.endpoint_url}
    emit(args, answer, lambda a: f"initialized empty store at {store}")
    return 0
