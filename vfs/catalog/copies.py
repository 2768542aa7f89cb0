"""Checkpoint copies: single-file copies of a catalog, taken for upload or downloaded from the remote.

A copy is a plain SQLite file (rollback journal, no WAL) that no `Catalog` has open: sync/ makes one
with `backup`, reads its head and records the remote's packs in it before uploading it; maintenance/
reads the packs a downloaded copy names. Each function opens the copy, does its one job, and closes it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

from vfs.errors import StoreError
from vfs.fsutil import PRIVATE_FILE
from vfs.types import PackNo


def backup(catalog: Path, path: Path) -> None:
    """A consistent copy of the catalog file `catalog` at `path` (SQLite online backup; a single file).

    It reads through a connection of its own in one read transaction (one WAL snapshot), so it never
    holds a catalog's lock and writers go on. Slow for a big catalog: call from a thread.
    """
    path.touch(mode=PRIVATE_FILE)  # as private as the catalog itself
    src = sqlite3.connect(catalog, isolation_level=None, check_same_thread=False)
    dest = sqlite3.connect(path, isolation_level=None)
    try:
        src.backup(dest)  # all pages in one step: one consistent state
        dest.execute("PRAGMA journal_mode = DELETE")
    finally:
        dest.close()
        src.close()


def head_and_max_pack(path: Path) -> tuple[int, int]:
    """(newest commit number, highest pack a chunk row names) of the copy at `path`; 0 for none."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        head = int(conn.execute("SELECT coalesce(max(commit_no), 0) FROM commits").fetchone()[0])
        max_pack = int(conn.execute("SELECT coalesce(max(pack), 0) FROM chunks").fetchone()[0])
    finally:
        conn.close()
    return head, max_pack


def record_remote_packs(path: Path, remote_packs: Mapping[PackNo, tuple[str, int]]) -> None:
    """Make the copy at `path` name `remote_packs` (pack -> (key, size)) as the remote's packs, and drop
    this machine's local settings from its meta, in one transaction: the copy is then what to upload.

    Raises:
        StoreError: a chunk row of the copy names a pack that `remote_packs` lacks.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        missing = [p for (p,) in conn.execute("SELECT DISTINCT pack FROM chunks") if p not in remote_packs]
        if missing:
            raise StoreError(f"checkpoint names packs the remote lacks: {missing[:5]}")
        conn.execute("BEGIN")
        conn.execute("DELETE FROM remote_packs")
        conn.executemany("INSERT INTO remote_packs(pack, key, size, uploaded_ns) VALUES (?,?,?,?)",
                         [(p, k, n, time.time_ns()) for p, (k, n) in remote_packs.items()])
        conn.execute("DELETE FROM meta WHERE key IN ('remote', 'cache_size', 'pulled')")  # this machine's
        conn.execute("COMMIT")
    finally:
        conn.close()


def set_local_meta(path: Path, values: Mapping[str, str]) -> int:
    """Set meta `values` (this machine's settings) in the copy at `path`, durably, in one transaction (a
    downloaded copy becoming a store's catalog); returns its newest commit number."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", list(values.items()))
        conn.execute("COMMIT")
        return int(conn.execute("SELECT coalesce(max(commit_no), 0) FROM commits").fetchone()[0])
    finally:
        conn.close()


def remote_pack_sizes(path: Path) -> dict[str, int]:
    """Object key -> size of every pack the copy at `path` records as on the remote."""
    conn = sqlite3.connect(path)
    try:
        return {str(k): int(n) for k, n in conn.execute("SELECT key, size FROM remote_packs")}
    finally:
        conn.close()
