"""vfs gc [--dry-run] [--json]: free the chunks and packs that no version uses; report bytes freed.

Through the daemon when the store is mounted (it pauses its committer meanwhile), else on the store
directly, holding its lock. See vfs.maintenance.gc for the ordering that makes a crash harmless.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfs.cli.common import add_store_options, store_of
from vfs.control.client import call, daemon_running
from vfs.maintenance import gc
from vfs.repository import Repository


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "gc", help="free chunks and packs nothing uses (after vfs prune)",
        description="Delete chunk rows no version uses, delete packs holding nothing used, and repack packs"
                    " that are mostly garbage. Reports the bytes freed.")
    p.add_argument("--dry-run", "-n", action="store_true", help="only report what would be freed")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    store = store_of(args)
    if daemon_running(store):
        answer = call(store, {"op": "gc", "dry_run": args.dry_run})
    else:
        with Repository.open(store) as repo:
            answer = gc.collect(repo, dry_run=args.dry_run).as_json()
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        verb = "would free" if args.dry_run else "freed"
        print(f"{verb} {answer['bytes_freed']} bytes: {answer['chunks_deleted']} chunk(s),"
              f" {len(answer['packs_deleted'])} pack(s) deleted, {len(answer['packs_repacked'])} repacked")
        for msg in answer["damaged"]:
            print(f"not repacked (damaged; run vfs fsck): {msg}")
    return 0
