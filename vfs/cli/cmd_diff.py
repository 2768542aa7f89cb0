"""vfs diff A [B]: names added (+), removed (-) and modified (M) between two snapshots or times."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfs.cli.common import accept_relative_times, add_store_options, settle, store_of


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "diff", help="what changed between two snapshots or times",
        description="List what changed from A to B (default: now). A and B are snapshot names or times"
                    " (2026-11-21T10:15, -2h, yesterday, 'midnight yesterday', 'last friday 17:00'); a time"
                    " before the store existed is its empty beginning (commit 0). '+ path' was added,"
                    " '- path' removed, 'M path' has other content; directories end in '/'. Metadata changes"
                    " are not listed.")
    p.add_argument("older", metavar="A")
    p.add_argument("newer", metavar="B", nargs="?")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    accept_relative_times(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.compose import open_repository
    from vfs.fs.diff import diff
    from vfs.fs.times import commit_named

    store = store_of(args)
    if args.newer is None:
        settle(store)  # "now" includes what open files hold
    with open_repository(store, lock=False) as repo:
        older = commit_named(repo.catalog, args.older)
        newer = repo.catalog.head().no if args.newer is None else commit_named(repo.catalog, args.newer)
        changes = diff(repo.catalog, older, newer)
    if args.json:
        print(json.dumps({"from": older, "to": newer, "changes": [c.as_json() for c in changes]}, indent=2))
    else:
        for c in changes:
            print(c)
    return 0
