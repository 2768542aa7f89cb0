"""vfs lease status | release | take [--force] [STORE | --mount MNT]: the volume's writer lease.

One store at a time writes a remote volume: the one holding its lease (docs/design.md "Writer lease").
A mounted or syncing store takes the lease when it is free and keeps it renewed; a clean `vfs umount`
releases it. `status` shows who holds it (and whether this store is the writer); `release` gives it up
now; `take` takes it once released or expired, `take --force` at once from a live holder (which then
publishes nothing more: its mount keeps working locally). `release` and `take` work on an unmounted
store (exit 4 if it is mounted: unmounting releases the lease). A store that took the lease continues
the volume's history only if it holds the volume's newest checkpoint (it published it, or cloned
it): else the take is undone and the command exits 6, saying to clone again.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vfs.cli.common import add_store_options, passphrase_of, store_of
from vfs.cli.output import emit
from vfs.fs.history import format_time


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("lease", help="show, release or take the volume's writer lease")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="who holds the writer lease, and whether this store does")
    release = actions.add_parser("release", help="give the writer lease up now (unmounted store)")
    take = actions.add_parser("take", help="take the writer lease once released or expired (unmounted store)")
    take.add_argument("--force", action="store_true",
                      help="take it at once, even from a live writer (which then publishes nothing more)")
    for q in (status, release, take):
        add_store_options(q, positional=True)
        q.add_argument("--json", action="store_true", help="print the answer as JSON")
        q.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.compose import open_repository
    from vfs.sync.checkpoint import check_head
    from vfs.sync.lease import LocalLease, WriterLease, status
    from vfs.sync.pull import current_manifest
    from vfs.sync.remote import open_store_backend

    store = store_of(args)
    # An encrypted volume's claims and pointer are sealed: reading them takes its passphrase.
    if args.action == "status":
        with open_repository(store, lock=False, passphrase=passphrase_of(args)) as repo:
            local = LocalLease.load(repo.path)
            backend = open_store_backend(repo)
        with backend:
            answer = status(backend, local)
        emit(args, answer, _describe)
        return 0
    with open_repository(store, passphrase=passphrase_of(args)) as repo, open_store_backend(repo) as backend:
        lease = WriterLease(repo.path, backend, repo.store_id)
        if args.action == "release":
            released = lease.release()
            answer = {"released": released, **status(backend, lease.local)}
            emit(args, answer, lambda a: "" if a["released"] else "this store did not hold the writer lease")
            return 0
        # A follower cache whose last pull a kill cut short has it completed first: that head is taken over.
        manifest = current_manifest(repo)
        if args.force:
            print(f"vfs: warning: taking the writer lease of {backend.url} by force: a writer that still runs"
                  " publishes nothing more (its mount keeps its data)", file=sys.stderr)
        taken = lease.hold(lambda: check_head(backend, manifest), take_expired=True, force=args.force,
                           seen_epoch=manifest.epoch if manifest is not None else 0)
        answer = {"taken": taken, **status(backend, lease.local)}
        emit(args, answer, lambda a: "" if a["taken"] else "this store holds the writer lease already")
    return 0


def _describe(a: dict[str, Any]) -> str:
    holder = a.get("holder")
    lines = [f"remote:      {a['remote']}", f"lease:       {a['state']} (epoch {a['epoch']})"]
    if holder is not None:
        lines.append(f"holder:      {holder['store']} on {holder['host']} (pid {holder['pid']}), since"
                     f" {format_time(holder['since_ns'])}"
                     + ("" if holder["released"] else f", until {format_time(holder['expires_ns'])}"))
    mine = a["this_store"]
    lines.append("this store:  " + ("the writer" if mine["writer"] else f"not the writer ({mine['lost']})"
                                    if mine["lost"] else "not the writer"))
    return "\n".join(lines)
