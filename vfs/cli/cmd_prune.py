"""vfs prune --keep-... [--dry-run] [--json]: forget snapshots a policy does not keep, and old versions.

Snapshot rules are restic's (see vfs.maintenance.retention); `--keep-versions-within D` also prunes
versions no kept snapshot holds once older than D (without it, versions are never pruned). The latest
version of every file is always kept. Through the daemon when the store is mounted, else directly.
Pruning only changes the catalog: run `vfs gc` afterwards to free the disk space.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from vfs.cli.common import add_store_options, argument_type, passphrase_of, store_of
from vfs.control.client import call, daemon_running
from vfs.errors import UsageError
from vfs.fs.history import parse_duration

if TYPE_CHECKING:
    from vfs.maintenance.retention import Policy


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "prune", help="apply a retention policy to snapshots and versions",
        description="Forget the snapshots no --keep rule keeps (restic's rules; a snapshot is kept if any rule"
                    " keeps it), and with --keep-versions-within the versions no kept snapshot holds. The latest"
                    " version of every file is always kept. Run 'vfs gc' afterwards to free space.")
    p.add_argument("--keep-last", type=int, default=0, metavar="N", help="keep the N newest snapshots")
    for unit in ("hourly", "daily", "weekly", "monthly", "yearly"):
        p.add_argument(f"--keep-{unit}", type=int, default=0, metavar="N",
                       help=f"keep the newest snapshot of each of the last N {unit} periods that have one")
    p.add_argument("--keep-within", type=argument_type(parse_duration), metavar="DURATION",
                   help="keep every snapshot taken within DURATION (2d, 6h, 1w) of the newest one")
    p.add_argument("--keep-versions-within", type=argument_type(parse_duration), metavar="DURATION",
                   help="prune versions that no kept snapshot holds once older than DURATION")
    p.add_argument("--dry-run", "-n", action="store_true", help="only show what would be pruned")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(run=run)


def policy_of(args: argparse.Namespace) -> Policy:
    from vfs.maintenance.retention import Policy

    for unit in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
        if getattr(args, f"keep_{unit}") < 0:
            raise UsageError(f"--keep-{unit} must be non-negative")
    policy = Policy(args.keep_last, args.keep_hourly, args.keep_daily, args.keep_weekly, args.keep_monthly,
                    args.keep_yearly, args.keep_within, args.keep_versions_within)
    if not policy.has_snapshot_rule and policy.versions_within_ns is None:
        raise UsageError("no policy given: use --keep-last, --keep-daily, ..., --keep-within or --keep-versions-within")
    return policy


def run(args: argparse.Namespace) -> int:
    policy = policy_of(args)
    store = store_of(args)
    if daemon_running(store):
        answer = call(store, {"op": "prune", "policy": policy.as_json(), "dry_run": args.dry_run})
    else:
        import trio

        from vfs.compose import open_repository
        from vfs.maintenance.service import Maintenance

        with open_repository(store, passphrase=passphrase_of(args)) as repo:
            answer = trio.run(lambda: Maintenance(repo).prune(policy, dry_run=args.dry_run))
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    verb = "would forget" if args.dry_run else "forgot"
    for s in answer["snapshots"]:
        mark = "keep  " if s["keep"] else "forget"
        print(f"{mark}  {s['name']}  {s['time']}  {', '.join(s['reasons'])}")
    print(f"{verb} {len(answer['forget'])} snapshot(s);"
          f" {'would prune' if args.dry_run else 'pruned'} {answer['versions']} version(s)"
          f" ({answer['version_bytes']} bytes), kept {answer['versions_kept']}")
    return 0
