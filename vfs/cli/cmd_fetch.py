"""vfs fetch PATH...: download now the data of files (or of all files under directories) that a lazy
clone would otherwise fetch on first read.

A store without a remote holds all its data: fetching from it is not an error (exit 0), and it says
so instead of "fetched 0 bytes", as `vfs status` says "no remote".
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfs.cli.common import add_store_options, passphrase_of, target
from vfs.cli.output import emit
from vfs.cli.progress import Progress

if TYPE_CHECKING:
    from vfs.catalog import Version


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("fetch", help="prefetch file data from the remote")
    p.add_argument("paths", nargs="+", metavar="PATH[@SPEC]")
    add_store_options(p, mount=False)
    p.set_defaults(run=run)
    p.add_argument("--json", action="store_true", help="print what was fetched as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="show no progress")


def run(args: argparse.Namespace) -> int:
    from vfs.compose import open_repository
    from vfs.fs.locate import locate
    from vfs.sync.clone import prefetch

    targets = [target(args, text) for text in args.paths]
    total = objects = 0
    local: set[Path] = set()  # stores without a remote (said once each)
    for t in targets:
        with open_repository(t.store, lock=False, passphrase=passphrase_of(args)) as repo:
            if repo.fetcher is None:
                if t.store not in local and not args.json:
                    print(f"{t.store} has no remote: all its data is local, nothing to fetch")
                local.add(t.store)
                continue
            found = locate(repo.catalog, t.names, t.spec)
            versions: list[Version] = []
            if found.is_dir:
                prefix = b"/".join(found.names)
                for e in repo.catalog.tree(found.at):
                    if e.hash is not None and (not prefix or e.path == prefix or e.path.startswith(prefix + b"/")):
                        v = repo.catalog.version_at(e.ino, found.at)
                        if v is not None:
                            versions.append(v)
            elif found.version is not None:
                versions.append(found.version)
            bar = Progress("fetch", quiet=args.quiet)
            try:
                total += prefetch(repo, repo.fetcher.backend, versions, progress=bar)
            finally:
                bar.close()
            objects += bar.objects_done or 0
    answer = {"bytes_fetched": total, "objects_fetched": objects, "stores_without_remote": sorted(map(str, local))}
    if args.json or len(local) < len({t.store for t in targets}):
        emit(args, answer, lambda a: f"fetched {a['bytes_fetched']} bytes")
    return 0
