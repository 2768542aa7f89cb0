"""vfs log PATH: the versions of a file, also of one that was deleted (found where it last existed)."""

from __future__ import annotations

import argparse
import json
import stat
from typing import Any

from vfs.catalog import LIVE
from vfs.cli.common import add_store_options, settle, target
from vfs.compose import open_repository
from vfs.errors import NotFound, UsageError
from vfs.fs.locate import format_time, joined, latest, show, time_arg

SHORT_HASH = 16  # hex digits shown in the table; `vfs cat blake3:PREFIX` accepts them


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "log", help="list the versions of a file",
        description="List the versions of a file: number, time, size, content hash and origin. PATH is a"
                    " path inside a mount, or with --store a path inside the volume. A deleted file's"
                    " history is found under the name it last had.")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--since", metavar="TIME",
                   help="only versions made at or after TIME (a relative time needs '=': --since=-2h)")
    p.add_argument("--until", metavar="TIME", help="only versions made at or before TIME")
    p.add_argument("--json", action="store_true", help="print JSON (with full hashes)")
    add_store_options(p, mount=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    t = target(args, args.path)
    since = time_arg(args.since, "--since") if args.since else None
    until = time_arg(args.until, "--until") if args.until else None
    # Log takes no @SPEC: an '@' is part of the name (user@host.txt), if such a file exists or existed.
    names = t.names if t.spec is None else joined(t.names, t.spec)
    settle(t.store)
    with open_repository(t.store, lock=False) as repo:
        try:
            ino, at = latest(repo.catalog, names)
        except NotFound:
            if t.spec is None:
                raise
            raise UsageError(f"{args.path}: log takes a path without @SPEC (and no file has that name)") from None
        if not stat.S_ISREG(repo.catalog.attr(ino, at).mode):
            raise UsageError(f"{show(names)} is not a regular file")
        versions = [v for v in repo.catalog.versions(ino)
                    if (since is None or v.time_ns >= since) and (until is None or v.time_ns <= until)]
    if args.json:
        print(json.dumps({"path": show(names), "exists": at == LIVE, "versions": [
            {"version": v.vno, "time": format_time(v.time_ns), "time_ns": v.time_ns, "size": v.size,
             "hash": v.hash.hex(), "origin": v.origin, "commit": v.commit_no} for v in versions]}, indent=2))
        return 0
    rows = [("VERSION", "TIME", "SIZE", "HASH", "ORIGIN")]
    rows += [(str(v.vno), format_time(v.time_ns), str(v.size), v.hash.hex()[:SHORT_HASH], v.origin)
             for v in versions]
    w = [max(len(r[k]) for r in rows) for k in range(5)]
    for r in rows:
        print(f"{r[0]:>{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]:<{w[3]}}  {r[4]}")
    return 0
