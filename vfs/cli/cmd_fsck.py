"""vfs fsck [STORE] [--read-data] [--read-data-subset n/m] [--repair] [--json]: verify a store.

Checking only reads: it works while the store is mounted (the store is opened without its lock).
`--repair` writes the catalog, so it needs the store unmounted (it takes the store's lock and says so
when a daemon has it). Exit status: 0 when no damage remains, 1 when some does, 3 when the store
cannot be opened, 4 when --repair finds the store in use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vfs.cli.progress import Progress
from vfs.errors import StoreLocked
from vfs.maintenance import fsck
from vfs.repository import Repository


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "fsck", help="check the catalog and every chunk; --repair mends what it can locally",
        description="Check catalog consistency and that every chunk is present in its pack; with --read-data"
                    " re-hash every chunk. Exits 1 when damage remains.")
    p.add_argument("store", nargs="?", type=Path, help="the store (default: $VFS_HOME or ~/.local/share/vfs/default)")
    p.add_argument("--read-data", action="store_true", help="read back every chunk and check its BLAKE3 id")
    p.add_argument("--read-data-subset", metavar="N/M", help="read only slice N of M (chosen by chunk id)")
    p.add_argument("--repair", action="store_true",
                   help="mend locally what can be (needs the store unmounted); report what needs the remote")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.cli.main import default_store

    store = (args.store or default_store()).absolute()
    subset = fsck.parse_subset(args.read_data_subset) if args.read_data_subset else None
    read_data = args.read_data or subset is not None
    try:
        repo = Repository.open(store, lock=args.repair)
    except StoreLocked as e:
        raise StoreLocked(f"{e}; --repair needs the store unmounted (checking alone works while mounted)") from None
    bar = Progress("fsck")
    with repo:
        try:
            report = fsck.check(repo, read_data=read_data, subset=subset, progress=bar)
        finally:
            bar.close()
        if args.repair and report.problems:
            fsck.repair(repo, report)
    _print(report, args.json)
    return 1 if report.damage_remains else 0


def _print(report: fsck.Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
        return
    for p in report.problems:
        state = " (repaired)" if p.repaired else " (unused: garbage)" if not p.used else \
            " (needs the remote)" if p.needs_remote else ""
        print(f"{p.kind}: {p.message}{state}", file=sys.stderr)
    summary = report.as_json()
    print(f"{report.packs} packs, {report.chunks} chunks checked, {report.chunks_read} read back"
          f" ({report.bytes_read} bytes); {summary['damaged']} damaged, {summary['repaired']} repaired")
