"""vfs cat PATH[@SPEC] | blake3:HASH: write a file's content, as it was or by its hash, to stdout."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from vfs.catalog import Version
from vfs.cli.common import add_store_options, settle, store_of, target
from vfs.compose import open_repository
from vfs.errors import IsADirectory, NotFound, UsageError
from vfs.fs.locate import locate, show
from vfs.repository import Repository

HASH_PREFIX = "blake3:"
_MIN_HEX = 8


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "cat", help="write a file's content (as it was, or by hash) to stdout",
        description="Write to stdout the content of PATH@SPEC (a version number N, a snapshot name or a"
                    " time; without @SPEC the last committed content) or of blake3:HASH (a content hash"
                    " as 'vfs log' shows it; a unique prefix of at least 8 hex digits will do).")
    p.add_argument("what", metavar="PATH[@SPEC] | blake3:HASH")
    add_store_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.what.startswith(HASH_PREFIX):
        store = store_of(args)
        settle(store)  # a save closed just before is content with a hash too
        with open_repository(store, lock=False) as repo:
            _write(repo, _by_hash(repo, args.what[len(HASH_PREFIX):]))
        return 0
    if args.mount is not None:
        raise UsageError("cat PATH takes a path inside a mount, or --store STORE with a path in the volume")
    t = target(args, args.what)
    settle(t.store)
    with open_repository(t.store, lock=False) as repo:
        found = locate(repo.catalog, t.names, t.spec)
        if found.is_dir:
            raise IsADirectory(f"{show(t.names)} is a directory")
        _write(repo, found.version)
    return 0


def _by_hash(repo: Repository, text: str) -> Version:
    if not re.fullmatch(r"[0-9a-fA-F]+", text) or len(text) % 2 or not _MIN_HEX <= len(text) <= 64:
        raise UsageError(f"{HASH_PREFIX}{text}: expected {_MIN_HEX} to 64 hex digits (an even number)")
    found = repo.catalog.hashes_with_prefix(bytes.fromhex(text))
    if not found:
        raise NotFound(f"no content with hash {HASH_PREFIX}{text}")
    if len(found) > 1:
        raise UsageError(f"{HASH_PREFIX}{text} is ambiguous: give more digits")
    version = repo.catalog.version_by_hash(found[0])
    assert version is not None
    return version


def _write(repo: Repository, version: Version | None) -> None:
    out = sys.stdout.buffer
    if version is not None:
        for data in repo.iter_content(version):
            out.write(data)
    out.flush()
