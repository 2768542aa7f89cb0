"""vfs snapshot create [NAME] | list | delete NAME: name the current tree, list and delete names.

With the store mounted, create and delete go through the daemon (so files still open are included);
otherwise they open the store directly. Listing only reads, so it opens the store read-only.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfs.cli.common import add_store_options, store_of
from vfs.cli.output import emit
from vfs.control.client import call, daemon_running
from vfs.fs.history import check_snapshot_name, format_time


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("snapshot", help="create, list and delete snapshots")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    c: argparse.ArgumentParser = actions.add_parser(
        "create", help="name the current tree (files still open included)",
        description="Name the current tree. NAME defaults to the current UTC time (2026-11-22T10:15:00Z, or"
                    " to the microsecond when that second has a snapshot already: 2026-11-22T10:15:00.250117Z);"
                    " a chosen NAME must not contain '/' or '@' nor read as a number or a time.")
    c.add_argument("name", nargs="?", help="the snapshot's name (default: the current time)")
    add_store_options(c)
    c.set_defaults(run=run_create)
    c.add_argument("--json", action="store_true", help="print the snapshot's name as JSON")

    ls: argparse.ArgumentParser = actions.add_parser("list", help="list snapshots with their files and bytes")
    ls.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(ls)
    ls.set_defaults(run=run_list)

    d: argparse.ArgumentParser = actions.add_parser("delete", help="delete a snapshot (its history stays)")
    d.add_argument("name")
    add_store_options(d)
    d.set_defaults(run=run_delete)


def run_create(args: argparse.Namespace) -> int:
    if args.name is not None:
        check_snapshot_name(args.name)
    store = store_of(args)
    if daemon_running(store):
        name = call(store, {"op": "snapshot_create", "name": args.name})["name"]
    else:
        from vfs.compose import open_repository
        from vfs.fs import snapshots

        with open_repository(store) as repo:
            name = snapshots.take(repo.catalog, args.name).name
    emit(args, {"name": name}, lambda a: str(a["name"]))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from vfs.compose import open_repository
    from vfs.fs import snapshots

    with open_repository(store_of(args), lock=False) as repo:
        infos = snapshots.describe(repo.catalog)
    if args.json:
        print(json.dumps([i.as_json() for i in infos], indent=2))
        return 0
    rows = [("NAME", "TIME", "FILES", "BYTES")]
    rows += [(i.name, format_time(i.time_ns), str(i.files), str(i.bytes)) for i in infos]
    width = [max(len(r[k]) for r in rows) for k in range(4)]
    for r in rows:
        print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:>{width[2]}}  {r[3]:>{width[3]}}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    store = store_of(args)
    if daemon_running(store):
        call(store, {"op": "snapshot_delete", "name": args.name})
    else:
        from vfs.compose import open_repository
        from vfs.fs import snapshots

        with open_repository(store) as repo:
            snapshots.delete(repo.catalog, args.name)
    return 0
