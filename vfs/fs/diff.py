"""Diff: what differs between the trees at two commits.

A name is *added* or *removed* when it exists in only one tree, and *modified* when it exists in
both but its content differs: a regular file's content hash, a symlink's target, or the kind of
thing the name holds. Metadata (mode, owner, times) is not compared. A content change counts even
when the file was replaced by another inode (an editor's atomic save); identical content written
again is no change.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass

from vfs.catalog import Catalog, TreeEntry
from vfs.fs.locate import show

ADDED, REMOVED, MODIFIED = "+", "-", "M"


@dataclass(frozen=True)
class Difference:
    change: str  # ADDED, REMOVED or MODIFIED
    path: str  # volume path; directories end in '/'
    kind: str  # "file", "dir", "symlink" or "other" (in the newer tree, for MODIFIED)

    def __str__(self) -> str:
        return f"{self.change} {self.path}"

    def as_json(self) -> dict[str, str]:
        name = {ADDED: "added", REMOVED: "removed", MODIFIED: "modified"}[self.change]
        return {"change": name, "path": self.path, "type": self.kind}


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def _content(e: TreeEntry) -> tuple[int, bytes | None]:
    if stat.S_ISREG(e.mode):
        return stat.S_IFREG, e.hash if e.size else None
    return stat.S_IFMT(e.mode), e.target


def diff(catalog: Catalog, older: int, newer: int) -> list[Difference]:
    """What changed from the tree at commit `older` to the tree at commit `newer`, sorted by path."""
    a = {e.path: e for e in catalog.tree(older)}
    b = {e.path: e for e in catalog.tree(newer)}
    out = []
    for path in sorted(a.keys() | b.keys()):
        old, new = a.get(path), b.get(path)
        entry = new or old
        assert entry is not None
        shown = show(path) + ("/" if stat.S_ISDIR(entry.mode) else "")
        if old is None:
            out.append(Difference(ADDED, shown, _kind(entry.mode)))
        elif new is None:
            out.append(Difference(REMOVED, shown, _kind(entry.mode)))
        elif _content(old) != _content(new):
            out.append(Difference(MODIFIED, shown, _kind(entry.mode)))
    return out
