"""vfs fsck [STORE | --mount MNT] [--read-data] [--read-data-subset n/m] [--remote] [--repair] [--json]:
verify a store (without STORE: the one mounted where it runs, else the default store).

Checking only reads: it works while the store is mounted (the store is opened without its lock).
Packs only the remote holds (evicted, lazy clone) are expected locally. `--remote` also checks the
bucket (vfs.maintenance.remote): every pack object the catalog needs and the checkpoint chain, and
with --read-data every pack object re-hashed against its name. `--repair` writes the catalog, so it
needs the store unmounted (it takes the store's lock and says so when a daemon has it); with a remote
it fetches damaged local packs back from it, and with --remote puts damaged remote objects back from
intact local packs. Exit status: 0 when no damage remains, 1 when some does, 2 usage (no remote), 3
when the store cannot be opened, 4 when --repair finds the store in use, 5 when the remote cannot be
reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from vfs.cli.common import add_store_options, passphrase_of, settle, store_of
from vfs.cli.progress import Progress
from vfs.errors import StoreLocked

if TYPE_CHECKING:
    from vfs.maintenance import fsck


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "fsck", help="check the catalog and every chunk; --repair mends what it can locally",
        description="Check catalog consistency and that every chunk is present in its pack; with --read-data"
                    " re-hash every chunk. Exits 1 when damage remains.")
    add_store_options(p, positional=True)
    p.add_argument("--read-data", action="store_true", help="read back every chunk and check its BLAKE3 id")
    p.add_argument("--read-data-subset", metavar="N/M", help="read only slice N of M (chosen by chunk id)")
    p.add_argument("--remote", action="store_true",
                   help="check the remote too: pack objects and the checkpoint chain (re-hashed with --read-data)")
    p.add_argument("--repair", action="store_true",
                   help="mend what can be (needs the store unmounted): from intact local copies, from the remote,"
                        " and with --remote the remote's objects from local packs")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(run=run)
    p.add_argument("--quiet", "-q", action="store_true", help="show no progress")


def run(args: argparse.Namespace) -> int:
    import trio

    from vfs.compose import open_repository
    from vfs.maintenance import fsck, remote
    from vfs.maintenance.service import Maintenance

    store = store_of(args)
    subset = fsck.parse_subset(args.read_data_subset) if args.read_data_subset else None
    read_data = args.read_data or subset is not None
    if not args.repair:
        settle(store)  # a mounted store's check covers what was written before it ran
    try:
        repo = open_repository(store, lock=args.repair, passphrase=passphrase_of(args))
    except StoreLocked as e:
        raise StoreLocked(f"{e}; --repair needs the store unmounted (checking alone works while mounted)") from None
    with repo:
        backend = remote.open_remote(repo) if args.remote else None
        try:
            bar = Progress("fsck", quiet=args.quiet)
            try:
                report = fsck.check(repo, read_data=read_data, subset=subset, progress=bar,
                                    remote_only=remote.remote_only(repo))
            finally:
                bar.close()
            if backend is not None:
                bar = Progress("fsck remote", quiet=args.quiet)
                try:
                    report.remote = remote.check_remote(repo, backend, report, read_data=read_data, subset=subset,
                                                        progress=bar).as_json()
                finally:
                    bar.close()
            if args.repair and report.problems:
                fsck.repair(repo, report)
                if repo.remote is not None and any(not p.repaired for p in report.problems):
                    if backend is None:
                        backend = remote.open_remote(repo)
                    maintenance = Maintenance(repo)
                    remote.repair_remote(repo, backend, report, lambda new_base: trio.run(
                        lambda: maintenance.publish_checkpoint(new_base=new_base)))
        finally:
            if backend is not None:
                backend.close()
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
    line = (f"{report.packs} packs, {report.chunks} chunks checked, {report.chunks_read} read back"
            f" ({report.bytes_read} bytes)")
    if report.remote is not None:
        r = report.remote
        line += (f"; remote: {r['packs']} pack objects checked, {r['packs_read']} read back ({r['bytes_read']}"
                 f" bytes), checkpoint {r['checkpoint']}")
    print(f"{line}; {summary['damaged']} damaged, {summary['repaired']} repaired")
