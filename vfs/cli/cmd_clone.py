"""vfs clone s3://BUCKET/PREFIX [STORE] [--lazy]: a new store holding a remote's volume, history included.

Without --lazy every pack is downloaded (progress on stderr: a bar on a terminal, else a line every
few seconds; none with --quiet); with --lazy only the catalog is, and packs are fetched on the first
read of a chunk in them (`vfs fetch` prefetches). --json prints what was cloned as JSON. An encrypted
volume needs its passphrase (or key file), checked before the store is made.
Before the store is made, the remote must answer within seconds and hold a volume: a wrong endpoint
(or none, for a bucket that is not on AWS) is a one-line error naming the endpoint tried, at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vfs.cli import cmd_remote
from vfs.cli.cmd_init import check_creatable
from vfs.cli.common import add_passphrase_options, default_store, passphrase_of
from vfs.cli.output import emit
from vfs.cli.progress import Progress
from vfs.errors import UsageError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("clone", help="make a store from a remote's volume")
    p.add_argument("url", metavar="s3://BUCKET/PREFIX")
    p.add_argument("store", nargs="?", type=Path,
                   help="new store directory (default: $VFS_HOME or ~/.local/share/vfs/default)")
    p.add_argument("--lazy", action="store_true", help="fetch data on first read instead of now")
    p.add_argument("--jobs", type=int, default=4, help="downloads in flight (4)")
    cmd_remote.add_remote_options(p)
    p.set_defaults(run=run)
    p.add_argument("--json", action="store_true", help="print what was cloned as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="show no progress")
    add_passphrase_options(p)


def run(args: argparse.Namespace) -> int:
    from vfs.sync.clone import clone
    from vfs.sync.remote import check_reachable, open_remote_backend

    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    remote = cmd_remote.remote_from_args(args)
    cache_size = None if args.cache_size is None else cmd_remote.parse_size(args.cache_size)
    store = Path(args.store or default_store()).absolute()
    check_creatable(store)
    check_reachable(remote, volume=True)
    bar = Progress("clone", quiet=args.quiet)
    with open_remote_backend(remote) as backend:
        try:
            repo = clone(backend, remote, store, lazy=args.lazy, jobs=args.jobs, progress=bar,
                         passphrase=passphrase_of(args))
        finally:
            bar.close()
        with repo:
            if cache_size is not None:
                repo.catalog.set_meta("cache_size", str(cache_size))
    answer = {"url": remote.url, "endpoint_url": remote.endpoint_url, "store": str(store), "lazy": args.lazy,
              "bytes_fetched": bar.done, "objects_fetched": bar.objects_done or 0}
    emit(args, answer, lambda a: f"cloned {a['url']} into {a['store']}" + (" (lazily)" if a["lazy"] else ""))
    return 0
