"""The store and volume path that `vfs put`, `get` and `ls` act on, given without a mount in sight.

With --store or --mount, PATH is a path inside that volume. Otherwise a PATH inside a vfs mount means
that volume and its path there (as for `vfs log`); any other PATH is a path inside the volume of the
mount holding the current directory, else of the default store.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vfs.cli.common import store_of, target
from vfs.errors import UsageError, VfsError


def volume_path(args: argparse.Namespace, text: str) -> tuple[Path, str]:
    """(store, 'PATH[@SPEC]' inside its volume) for a command's PATH argument."""
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
