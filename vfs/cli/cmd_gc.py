"""vfs gc [--dry-run] [--local-only] [--json]: free the chunks and packs that no version uses, locally
and (when the store has a remote) in the bucket; report bytes freed.

Through the daemon when the store is mounted (it pauses its committer meanwhile, and its uploader
during the remote part), else on the store directly, holding its lock. See vfs.maintenance.gc and
vfs.maintenance.remote for the orderings that make a crash harmless. Exit 5 when the remote part
could not be done (the local part is done and reported).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vfs.cli.common import add_store_options, passphrase_of, store_of
from vfs.control.client import call, daemon_running
from vfs.errors import BackendError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "gc", help="free chunks and packs nothing uses (after vfs prune)",
        description="Delete chunk rows no version uses, delete packs holding nothing used, and repack packs"
                    " that are mostly garbage. Reports the bytes freed.")
    p.add_argument("--dry-run", "-n", action="store_true", help="only report what would be freed")
    p.add_argument("--local-only", action="store_true", help="leave the remote's objects alone")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = store_of(args)
    if daemon_running(store):
        answer = call(store, {"op": "gc", "dry_run": args.dry_run, "remote": not args.local_only}, timeout=3600)
    else:
        import trio

        from vfs.compose import open_repository
        from vfs.maintenance.service import Maintenance

        with open_repository(store, passphrase=passphrase_of(args)) as repo:
            answer = trio.run(lambda: Maintenance(repo).gc(dry_run=args.dry_run, remote=not args.local_only))
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        verb = "would free" if args.dry_run else "freed"
        print(f"{verb} {answer['bytes_freed']} bytes: {answer['chunks_deleted']} chunk(s),"
              f" {len(answer['packs_deleted'])} pack(s) deleted, {len(answer['packs_repacked'])} repacked")
        for msg in answer["damaged"]:
            print(f"not repacked (damaged; run vfs fsck): {msg}")
        r = answer.get("remote")
        if r is not None:
            if args.dry_run:
                print(f"remote: would forget {len(r['packs_forgotten'])} pack(s)")
            else:
                print(f"remote: freed {r['bytes_freed']} bytes: {r['pack_objects_deleted']} pack object(s),"
                      f" {r['catalog_objects_deleted']} old catalog object(s) deleted")
    if answer.get("remote_error"):
        print(f"vfs: error: remote gc not done: {answer['remote_error']}", file=sys.stderr)
        return BackendError.exit_code
    return 0
