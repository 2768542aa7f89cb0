"""vfs cat PATH[@SPEC] | blake3:HASH | blake3://HASH/NAME: write a file's content, as it was, by its hash
or by a shared reference (`Volume.url`), to stdout."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from vfs.cli.common import add_store_options, passphrase_of, settle, store_of, target
from vfs.errors import IsADirectory, UsageError

if TYPE_CHECKING:
    from vfs.catalog import Version
    from vfs.repository import Repository

_RANGE_PIECE = 8 << 20  # bytes of a range read at once: a few chunks (their mean size is ~640 KiB)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "cat", help="write a file's content (as it was, or by hash) to stdout",
        description="Write to stdout the content of PATH@SPEC (a version number N, a snapshot name or a"
                    " time; without @SPEC the last committed content) or of blake3:HASH (a content hash"
                    " as 'vfs log' shows it; a unique prefix of at least 8 hex digits will do). With --offset"
                    " and --length, only that byte range (only the chunks it covers are read). A reference"
                    " blake3://HASH/NAME (from the Python API's Volume.url) reads that content from the store,"
                    " whatever its path there.")
    p.add_argument("what", metavar="PATH[@SPEC] | blake3:HASH | blake3://HASH/NAME")
    p.add_argument("--offset", metavar="N", default="0", help="start at byte N (default 0)")
    p.add_argument("--length", metavar="M", help="write at most M bytes (default: to the end)")
    add_store_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.api.reading import HASH_PREFIX, by_hash
    from vfs.api.urls import is_url, parse_url
    from vfs.compose import open_repository
    from vfs.fs.locate import locate, show

    start = _byte_count(args.offset, "--offset")
    end = None if args.length is None else start + _byte_count(args.length, "--length")
    what = parse_url(args.what)[0] if is_url(args.what) else args.what
    if what.startswith(HASH_PREFIX):
        store = store_of(args)
        settle(store)  # a save closed just before is content with a hash too
        with open_repository(store, lock=False, passphrase=passphrase_of(args)) as repo:
            _write(repo, by_hash(repo.catalog, what), start, end)
        return 0
    if args.mount is not None:
        raise UsageError("cat PATH takes a path inside a mount, or --store STORE with a path in the volume")
    t = target(args, args.what)
    settle(t.store)
    with open_repository(t.store, lock=False, passphrase=passphrase_of(args)) as repo:
        found = locate(repo.catalog, t.names, t.spec)
        if found.is_dir:
            raise IsADirectory(f"{show(t.names)} is a directory")
        _write(repo, found.version, start, end)
    return 0


def _byte_count(text: str, what: str) -> int:
    """A non-negative number of bytes given as an option (ASCII digits)."""
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"{what}: {text!r} is not a number of bytes (0, 1, 2, ...)")
    return int(text)


def _write(repo: Repository, version: Version | None, start: int = 0, end: int | None = None) -> None:
    """Write bytes [start, end) of `version` (end None: to its end) to stdout.

    The whole content streams chunk by chunk; a range is read in pieces of _RANGE_PIECE bytes, each
    from the chunks it covers only (Repository.read), so `--offset` deep into a large file reads little.
    """
    out = sys.stdout.buffer
    if version is not None and start == 0 and end is None:
        for data in repo.iter_content(version):
            out.write(data)
    elif version is not None:
        stop = version.size if end is None else min(end, version.size)
        for at in range(start, stop, _RANGE_PIECE):
            out.write(repo.read(version, at, min(_RANGE_PIECE, stop - at)))
    out.flush()
