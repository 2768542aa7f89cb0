"""vfs ls [PATH[@SPEC]] [-l] [--json]: list a directory of a volume, now or as it was (no mount needed)."""

from __future__ import annotations

import argparse
import os
import stat
from datetime import datetime
from typing import TYPE_CHECKING, Any

from vfs.cli.common import accept_relative_times, add_store_options
from vfs.cli.output import emit

if TYPE_CHECKING:
    from vfs.api.reading import Entry


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "ls", help="list a directory of a volume, now or as it was (no mount needed)",
        description="List the directory PATH@SPEC (a snapshot name or a time; without @SPEC as it is now),"
                    " or show the file it names. PATH is a path inside the volume, the root by default (see"
                    " 'vfs put --help' for which volume).")
    p.add_argument("path", metavar="PATH[@SPEC]", nargs="?", default="")
    p.add_argument("-l", dest="long", action="store_true", help="mode, size, time and version of each")
    p.add_argument("--json", action="store_true", help="print JSON (every field)")
    add_store_options(p, remote=True)
    accept_relative_times(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.api.reading import Entry
    from vfs.cli.volume_paths import open_volume, volume_path

    store, path = volume_path(args, args.path)
    with open_volume(args, store) as vol:
        entries = [e for e in vol.ls(path, detail=True) if isinstance(e, Entry)]
    answer = {"path": path, "entries": [e.as_dict() for e in entries]}
    emit(args, answer, lambda a: "\n".join(_line(e, long=args.long) for e in entries))
    return 0


def _line(e: Entry, *, long: bool) -> str:
    from vfs.api.reading import split

    names, _ = split(e.name)  # the name without the @SPEC the listing carries on
    name = os.fsdecode(names[-1] if names else b".") + ("/" if e.type == "directory" else "")
    if not long:
        return name
    when = datetime.fromtimestamp(e.mtime).strftime("%Y-%m-%d %H:%M:%S")
    version = f"@{e.version}" if e.version else "-"
    return f"{stat.filemode(e.mode)}  {e.size:>12}  {when}  {version:>5}  {name}"
