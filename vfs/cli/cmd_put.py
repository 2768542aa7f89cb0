"""vfs put LOCAL DEST: a local file or folder becomes new versions in a volume, without a mount.

Unchanged files (same size and mtime as the volume's, or same content with --checksum) make no version
and store nothing. A mounted store is written through its daemon; an unmounted one with its lock held.
"""

from __future__ import annotations

import argparse
from typing import Any

from vfs.cli.common import add_store_options
from vfs.cli.output import emit
from vfs.errors import VfsError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "put", help="store a local file or folder in a volume as new versions (no mount needed)",
        description="Store LOCAL (a file or a folder) at DEST in the volume as new versions. A file becomes"
                    " the file DEST (or goes into DEST when that is a directory); a folder's contents go into"
                    " the directory DEST, made if missing. Files that did not change since the last put make"
                    " no version and store nothing. DEST is a path inside the volume (of --store, --mount, or"
                    " of the mount DEST lies in, else of the mount holding the current directory or the"
                    " default store). Works without FUSE and as any user who owns the store.")
    p.add_argument("local", metavar="LOCAL")
    p.add_argument("dest", metavar="DEST")
    p.add_argument("--checksum", action="store_true",
                   help="compare content hashes of files with the volume's size, not their mtimes")
    p.add_argument("--json", action="store_true", help="print what was done as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="show no progress")
    add_store_options(p, remote=True)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.cli.volume_paths import local_error, open_volume, volume_path

    store, dest = volume_path(args, args.dest)
    try:
        with open_volume(args, store, writable=True) as vol:
            result = vol.put(dest, args.local, checksum=args.checksum, progress=False if args.quiet else None)
    except VfsError:
        raise
    except OSError as e:
        raise local_error(e) from None
    emit(args, result.as_json(), _text)
    return 0


def _text(answer: dict[str, Any]) -> str:
    lines = [f"skipped {path}: {why}" for path, why in answer["skipped"]]
    lines.append(f"{len(answer['created'])} created, {len(answer['updated'])} updated,"
                 f" {len(answer['unchanged'])} unchanged; {answer['stored_bytes']} bytes stored")
    return "\n".join(lines)
