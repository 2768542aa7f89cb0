"""vfs restore PATH@SPEC [--to DEST] [--delete] [--dry-run]: bring an old state back as new versions
(history stays)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfs.cli.common import add_store_options, passphrase_of, same_volume, target
from vfs.control.client import call, daemon_running


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "restore", help="bring back a file or directory as it was",
        description="Bring back PATH as it was at SPEC (a version number N, a snapshot name or a time), as"
                    " new versions: history is never rewritten and no data is copied. A deleted file is"
                    " created again (without @SPEC: as it last was). A directory is restored recursively;"
                    " without --delete, files that did not exist at SPEC are left alone, and names that now"
                    " hold another kind of thing are skipped and reported. With --to, the result goes to DEST"
                    " instead (into DEST if it is an existing directory and PATH is not).")
    p.add_argument("path", metavar="PATH[@SPEC]")
    p.add_argument("--to", metavar="DEST", help="restore to DEST (in the same volume) instead of PATH")
    p.add_argument("--delete", action="store_true",
                   help="make a directory exactly as it was: remove what it did not hold at SPEC (as new"
                        " commits: the removed files' history stays) and replace what is of another kind now")
    p.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    add_store_options(p, mount=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.fs.locate import locate, show
    from vfs.fs.restore import Change, restore

    t = target(args, args.path)
    dest = None if args.to is None else same_volume(t, args, args.to)
    if daemon_running(t.store):
        answer = call(t.store, {"op": "restore", "path": show(t.names), "spec": t.spec,
                                "to": None if dest is None else show(dest), "delete": args.delete,
                                "dry_run": args.dry_run})
        changes = [Change(c["action"], c["path"], c["detail"]) for c in answer["changes"]]
    else:
        from vfs.compose import open_repository

        # A dry run writes nothing, so it may run next to another reader without the lock.
        with open_repository(t.store, lock=not args.dry_run, passphrase=passphrase_of(args)) as repo:
            changes = list(restore(repo, locate(repo.catalog, t.names, t.spec), dest,
                                   delete=args.delete, dry_run=args.dry_run))
    if args.json:
        print(json.dumps([{"action": c.action, "path": c.path, "detail": c.detail} for c in changes], indent=2))
        return 0
    for c in changes:
        print(c)
    if not changes:
        print("nothing to restore")
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0
