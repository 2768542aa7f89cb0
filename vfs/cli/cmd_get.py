"""vfs get PATH[@SPEC] [LOCAL]: write a file or a whole tree, as it was, to a local path (no mount needed)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from vfs.cli.common import add_store_options
from vfs.cli.output import emit
from vfs.errors import VfsError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "get", help="write a file or tree from a volume, as it was, to a local path (no mount needed)",
        description="Write PATH@SPEC (a version number N, a snapshot name or a time; without @SPEC as it is"
                    " now) or blake3:HASH to LOCAL: a file (into LOCAL when that is a directory), or a whole"
                    " directory tree. LOCAL defaults to PATH's name in the current directory. PATH is a path"
                    " inside the volume (see 'vfs put --help' for which volume).")
    p.add_argument("path", metavar="PATH[@SPEC]")
    p.add_argument("local", metavar="LOCAL", nargs="?")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="show no progress")
    add_store_options(p, remote=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.api.reading import is_hash, split
    from vfs.cli.volume_paths import local_error, open_volume, volume_path

    store, path = volume_path(args, args.path)
    local = args.local
    if local is None:
        names = () if is_hash(path) else split(path)[0]
        local = os.fsdecode(names[-1]) if names else (path.removeprefix("blake3:")[:16] if is_hash(path) else ".")
    try:
        with open_volume(args, store) as vol:
            written = vol.get(path, local, progress=False if args.quiet else None)
    except VfsError:
        raise
    except OSError as e:
        raise local_error(e) from None
    emit(args, {"path": path, "local": str(written)}, lambda a: "")
    return 0
