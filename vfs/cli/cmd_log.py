"""vfs log PATH: the versions of a file (also of one that was deleted, found where it last existed), or of
every file that is or was under a directory, newest first."""

from __future__ import annotations

import argparse
import json
import stat
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vfs.cli.common import accept_relative_times, add_store_options, settle, target
from vfs.errors import NotFound, UsageError
from vfs.fs.history import format_time
from vfs.fs.times import EXAMPLES, time_option
from vfs.types import ROOT_INO

if TYPE_CHECKING:
    from vfs.catalog import Catalog, Version

SHORT_HASH = 16  # hex digits shown in the table; `vfs cat blake3:PREFIX` accepts them
END_OF_TIME_NS = 2**63 - 1  # no --until: the latest a commit time (signed 64-bit ns) can be


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "log", help="list the versions of a file, or of everything in a directory",
        description="List the versions of a file: number, time, size, content hash and origin, oldest first."
                    " For a directory, the versions of every file that is or was under it, newest first, each"
                    " with its path (the last it had there). PATH is a path inside a mount, or with --store a"
                    " path inside the volume. A deleted file's or directory's history is found under the name"
                    " it last had.")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--since", metavar="TIME", help=f"only versions made at or after TIME ({EXAMPLES})")
    p.add_argument("--until", metavar="TIME", help="only versions made at or before TIME")
    p.add_argument("--json", action="store_true", help="print JSON (with full hashes)")
    add_store_options(p, mount=False)
    accept_relative_times(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.compose import open_repository
    from vfs.fs.locate import joined, latest, show

    t = target(args, args.path)
    since = time_option(args.since, "--since") if args.since else None
    until = time_option(args.until, "--until") if args.until else None
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
        mode = repo.catalog.attr(ino, at).mode
        if stat.S_ISDIR(mode):
            _print_directory(args, names, at, _versions_under(repo.catalog, names, since, until))
            return 0
        if not stat.S_ISREG(mode):
            raise UsageError(f"{show(names)} is neither a regular file nor a directory: it has no versions")
        versions = [v for v in repo.catalog.versions(ino)
                    if (since is None or v.time_ns >= since) and (until is None or v.time_ns <= until)]
    _print_file(args, names, at, versions)
    return 0


def _versions_under(
    catalog: Catalog, names: tuple[bytes, ...], since: int | None, until: int | None,
) -> list[tuple[bytes, Version]]:
    """(volume path, version) of every file under the directory `names` led to at any time, newest first."""
    from vfs.catalog import LIVE

    spans = [(ROOT_INO, 1, LIVE)] if not names else catalog.path_spans(names)
    # The path may have led to a file at times: only its directories' spans count.
    dirs = [(ino, first, end) for ino, first, end in spans
            if stat.S_ISDIR(catalog.attr(ino, LIVE if end == LIVE else end - 1).mode)]
    found = catalog.versions_under(dirs, since_ns=0 if since is None else since,
                                   until_ns=END_OF_TIME_NS if until is None else until)
    prefix = b"/".join(names) + b"/" if names else b""
    return [(prefix + path, v) for path, v in found]


def _print_file(args: argparse.Namespace, names: tuple[bytes, ...], at: int, versions: list[Version]) -> None:
    from vfs.catalog import LIVE
    from vfs.fs.locate import show

    if args.json:
        print(json.dumps({"path": show(names), "exists": at == LIVE, "versions": [
            {"version": v.vno, "time": format_time(v.time_ns), "time_ns": v.time_ns, "size": v.size,
             "hash": v.hash.hex(), "origin": v.origin, "commit": v.commit_no} for v in versions]}, indent=2))
        return
    _table([("VERSION", "TIME", "SIZE", "HASH", "ORIGIN")]
           + [(str(v.vno), format_time(v.time_ns), str(v.size), v.hash.hex()[:SHORT_HASH], v.origin)
              for v in versions], right={0, 2})


def _print_directory(
    args: argparse.Namespace, names: tuple[bytes, ...], at: int, found: list[tuple[bytes, Version]],
) -> None:
    from vfs.catalog import LIVE
    from vfs.fs.locate import show

    if args.json:
        print(json.dumps({"path": show(names), "exists": at == LIVE, "versions": [
            {"path": show(path), "version": v.vno, "time": format_time(v.time_ns), "time_ns": v.time_ns,
             "size": v.size, "hash": v.hash.hex(), "origin": v.origin, "commit": v.commit_no}
            for path, v in found]}, indent=2))
        return
    _table([("TIME", "VERSION", "SIZE", "ORIGIN", "PATH")]
           + [(format_time(v.time_ns), str(v.vno), str(v.size), v.origin, show(path)) for path, v in found],
           right={1, 2})


def _table(rows: Sequence[tuple[str, ...]], *, right: set[int]) -> None:
    """Columns padded to their widest cell (numbers in `right` right-aligned); the last one is not padded."""
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        cells = [f"{c:>{w}}" if k in right else f"{c:<{w}}" for k, (c, w) in enumerate(zip(r, widths, strict=True))]
        print("  ".join([*cells[:-1], r[-1]]))
