"""The store and volume path that `vfs put`, `get` and `ls` act on, given without a mount in sight.

With --store or --mount, PATH is a path inside that volume. Otherwise a PATH inside a vfs mount means
that volume and its path there (as for `vfs log`); any other PATH is a path inside the volume of the
mount holding the current directory, else of the default store. --store may also be a remote volume
(`s3://BUCKET/PREFIX`, with --endpoint-url, --region and --cache-dir), opened by `open_volume`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vfs.api import Volume, open
from vfs.api.remote import open_remote
from vfs.cli.common import passphrase_of, store_of, target
from vfs.errors import UsageError, VfsError


def volume_path(args: argparse.Namespace, text: str) -> tuple[Path | str, str]:
    """(store or s3:// location, 'PATH[@SPEC]' inside its volume) for a command's PATH argument."""
    if isinstance(args.store, str):
        return args.store, text
    for option in ("endpoint_url", "region", "cache_dir"):
        if getattr(args, option, None) is not None:
            raise UsageError(f"--{option.replace('_', '-')} is an option of --store s3://BUCKET/PREFIX")
    if args.store is not None or getattr(args, "mount", None) is not None:
        return store_of(args), text
    try:
        t = target(args, text)
    except UsageError:  # not inside a mount: a path in the volume of the store found as usual
        return store_of(args), text
    path = "/".join(os.fsdecode(n) for n in t.names)
    return t.store, path if t.spec is None else f"{path}@{t.spec}"


def local_error(e: OSError) -> VfsError:
    """A local file's OSError as the one-line error the CLI prints."""
    where = f"{e.filename}: " if e.filename else ""
    return VfsError(f"{where}{e.strerror or e}")


def open_volume(args: argparse.Namespace, location: Path | str, *, writable: bool = False) -> Volume:
    """The volume `volume_path` found: a store directory, or a remote one with the command's options and
    passphrase (a writable remote volume holds its writer lease until closed)."""
    if isinstance(location, str):
        return open_remote(location, writable=writable, endpoint_url=args.endpoint_url, region=args.region,
                           cache_dir=args.cache_dir, passphrase=passphrase_of(args))
    return open(location, writable=writable)
