"""History of paths and trees: where a path led over time, and the whole tree at a commit."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from typing import Any

from vfs.catalog.rows import TreeEntry
from vfs.catalog.schema import LIVE
from vfs.catalog.transactions import Transactions
from vfs.types import ROOT_INO, InodeNo


class History(Transactions):
    """Queries over time: a path's inodes over commits, and whole trees at a commit."""

    def path_spans(self, names: Sequence[bytes]) -> list[tuple[InodeNo, int, int]]:
        """Every (inode, first, end): the path `names` (from the root) led to that inode in commits [first, end).

        Sorted by end, so the last span is the latest time the path existed (end is LIVE while it does).
        Each step is an indexed lookup of (parent, name).
        """
        spans: list[tuple[InodeNo, int, int]] = [(ROOT_INO, 1, LIVE)]
        with self._lock:
            for name in names:
                found = []
                for parent, lo, hi in spans:
                    for ino, first, end in self._db.execute(
                        "SELECT ino, commit_from, commit_to FROM dirents WHERE parent = ? AND name = ?"
                        " AND commit_from < ? AND commit_to > ?", (parent, name, hi, lo),
                    ):
                        found.append((InodeNo(int(ino)), max(lo, int(first)), min(hi, int(end))))
                spans = found
        return sorted(spans, key=lambda s: (s[2], s[1]))

    def tree(self, at: int) -> list[TreeEntry]:
        """Every name in the tree at commit `at` (one scan of the entries that held then), parents first."""
        rows = self._all(
            "WITH held(parent, name, ino) AS (SELECT parent, name, ino FROM dirents"
            "  WHERE commit_from <= ? AND commit_to > ?)"
            " SELECT h.parent, h.name, h.ino, s.mode, s.size, v.hash, i.target FROM held h"
            " JOIN inodes i ON i.ino = h.ino"
            " JOIN inode_states s ON s.ino = h.ino AND s.commit_from ="
            "  (SELECT max(commit_from) FROM inode_states WHERE ino = h.ino AND commit_from <= ?)"
            " LEFT JOIN versions v ON v.id = s.version",
            (at, min(at, LIVE - 1), at),
        )
        children: dict[int, list[Any]] = {}
        for row in rows:
            children.setdefault(int(row[0]), []).append(row)
        out: list[TreeEntry] = []
        todo: list[tuple[int, bytes]] = [(ROOT_INO, b"")]
        while todo:
            parent, prefix = todo.pop()
            for _, name, ino, mode, size, hash_, target in sorted(children.get(parent, ()), key=lambda r: r[1]):
                path = prefix + bytes(name)
                out.append(TreeEntry(path, InodeNo(int(ino)), int(mode), int(size),
                                     None if hash_ is None else bytes(hash_),
                                     None if target is None else bytes(target)))
                if stat.S_ISDIR(mode):
                    todo.append((int(ino), path + b"/"))
        return out

    def tree_stats(self, at: int) -> tuple[int, int]:
        """(regular files, their total size in bytes) in the tree at commit `at`; hard links count once."""
        row = self._one(
            "WITH f(ino) AS (SELECT DISTINCT d.ino FROM dirents d JOIN inodes i ON i.ino = d.ino"
            "  WHERE i.kind = ? AND d.commit_from <= ? AND d.commit_to > ?)"
            " SELECT count(*), coalesce(sum((SELECT size FROM inode_states WHERE ino = f.ino AND commit_from <= ?"
            "  ORDER BY commit_from DESC LIMIT 1)), 0) FROM f",
            (stat.S_IFREG, at, min(at, LIVE - 1), at),
        )
        return int(row[0]), int(row[1])
