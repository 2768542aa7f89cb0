"""Read-only views of history, reached through hidden names and given synthetic inode numbers.

Nodes:
    View(ino, at)        a real inode as it was at commit `at`: DIR@NAME/, FILE@time, /.snapshots/NAME
    VersionFile(ino, n)  version n of a file's history: FILE@n, and the entries of FILE@
    VersionList(ino)     FILE@, a directory whose entries 1, 2, ... are the file's versions
    SnapshotList()       /.snapshots, a directory of the snapshots (mkdir/rmdir there take/delete one)

Hidden names are resolved only on lookup and never listed by readdir; a real entry of the same name
always wins. A name that resolves to nothing (a malformed or out-of-range spec, bytes after '@' that are
not UTF-8) is no view: it is ENOENT, and free for a real file.

Owners and modes: a view shows the state it is a view of. View(ino, at) shows the inode's state at
`at`; a version (FILE@N, FILE@/N) the state that the commit which made it left (see catalog.Version),
so an old version never shows looser permissions than it was written with. FILE@ itself is r-x for
all with the file's current owner: its listing shows what stat(FILE@N) shows to anyone anyway (as
stat of a file needs no permission on the file), while each entry's content is guarded by its own mode.

Synthetic inode numbers start at SYNTHETIC_BASE, far above any real one, and stay stable
for the life of the daemon (a view is immutable, so the kernel may cache what it shows).
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from vfs.catalog import LIVE, Attr, Catalog, Version
from vfs.errors import NoData, NotFound, ReadOnly
from vfs.fs.history import parse_spec, parse_version
from vfs.types import ROOT_INO, InodeNo, VersionNo

SYNTHETIC_BASE = 1 << 48
SNAPSHOTS_NAME = b".snapshots"


@dataclass(frozen=True)
class View:
    ino: InodeNo
    at: int


@dataclass(frozen=True)
class VersionFile:
    ino: InodeNo
    vno: int
    content: bytes  # its hash: a rename over a file renumbers versions, and the kernel may cache pages
                    # of a synthetic inode, so other content must never get the same one


@dataclass(frozen=True)
class VersionList:
    ino: InodeNo


@dataclass(frozen=True)
class SnapshotList:
    pass


Node = View | VersionFile | VersionList | SnapshotList


def is_synthetic(ino: int) -> bool:
    return ino >= SYNTHETIC_BASE


class Views:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._inos: dict[Node, InodeNo] = {}
        self._nodes: dict[InodeNo, Node] = {}

    # -- synthetic inode numbers ---------------------------------------------------------------
    def ino(self, node: Node) -> InodeNo:
        ino = self._inos.get(node)
        if ino is None:
            ino = InodeNo(SYNTHETIC_BASE + len(self._inos))
            self._inos[node] = ino
            self._nodes[ino] = node
        return ino

    def listings_of(self, inos: set[InodeNo]) -> list[InodeNo]:
        """The synthetic directories the kernel may cache whose entries change with `inos`' history (FILE@
        of each) or with the snapshots (/.snapshots): a follower's refresh invalidates them."""
        return [ino for node, ino in self._inos.items()
                if isinstance(node, SnapshotList) or (isinstance(node, VersionList) and node.ino in inos)]

    def node(self, ino: InodeNo) -> Node:
        try:
            return self._nodes[ino]
        except KeyError:
            raise NotFound(f"unknown history inode {ino}") from None

    # -- resolving names -------------------------------------------------------------------------
    def lookup_hidden(self, parent: InodeNo, name: bytes) -> Node | None:
        """A hidden name in live directory `parent` (after the real lookup found nothing)."""
        if parent == ROOT_INO and name == SNAPSHOTS_NAME:
            return SnapshotList()
        return self._resolve_spec(parent, LIVE, name)

    @contextmanager
    def hidden_names_read_only(self, parent: InodeNo, name: bytes) -> Iterator[None]:
        """A name the catalog lacks but history resolves (f@1, .snapshots) is read-only, not missing."""
        try:
            yield
        except NotFound:
            if self.lookup_hidden(parent, name) is not None:
                raise ReadOnly("history is read-only") from None
            raise

    def refuse_hidden_name(self, parent: InodeNo, name: bytes) -> None:
        """Refuse a new name (create, mkdir, link, rename's target...) that history resolves now.

        Such a name is no free name but a read-only view (f@1, d@snap, f@, /.snapshots): a real entry
        there would hide it, since a real name always wins. A name that resolves to nothing is free,
        and once real it wins for good (f@9 made before f had a version 9).
        """
        if self.lookup_hidden(parent, name) is not None and self._catalog.lookup(parent, name) is None:
            raise ReadOnly("history is read-only")

    def lookup(self, parent: InodeNo, name: bytes) -> Node | None:
        """A name inside a synthetic directory."""
        node = self.node(parent)
        if isinstance(node, SnapshotList):
            snap = self._catalog.snapshot(name.decode(errors="surrogateescape"))
            return View(ROOT_INO, snap.commit_no) if snap else None
        if isinstance(node, VersionList):
            vno = parse_version(name.decode(errors="replace"))
            return None if vno is None else self._version_file(node.ino, vno)
        if isinstance(node, View):
            child = self._catalog.lookup(node.ino, name, node.at)
            if child is not None:
                return View(child, node.at)
            return self._resolve_spec(node.ino, node.at, name)
        return None

    def _resolve_spec(self, directory: InodeNo, at: int, name: bytes) -> Node | None:
        base, sep, raw_spec = name.rpartition(b"@")
        if not sep or not base:
            return None
        try:
            spec = raw_spec.decode()
        except UnicodeDecodeError:
            return None  # no number, time or snapshot name (UTF-8 text) has such bytes
        now_ino = self._catalog.lookup(directory, base, at)
        # Snapshot names come before times: a default name (an ISO time) is then exactly its snapshot.
        snap = self._catalog.snapshot(spec) if spec and not spec.isdigit() else None
        target: int
        if snap is not None:
            target = snap.commit_no
        else:
            parsed = parse_spec(spec)
            if parsed is None or parsed.snapshot is not None:
                return None
            if parsed.listing or parsed.version is not None:
                if now_ino is None or not stat.S_ISREG(self._catalog.attr(now_ino, at).mode):
                    return None
                if parsed.listing:
                    return VersionList(now_ino)
                assert parsed.version is not None
                return self._version_file(now_ino, parsed.version)
            assert parsed.time_ns is not None
            found = self._catalog.commit_at_time(parsed.time_ns)
            if found is None:
                return None
            target = min(found, at)
        # The name as it was then (the file may since have been replaced or deleted), else the
        # inode the name has now, as it was then (it may since have been renamed).
        ino = self._catalog.lookup(directory, base, target) or now_ino
        if ino is None:
            return None
        try:
            self._catalog.attr(ino, target)
        except NotFound:
            return None
        return View(ino, target)

    # -- what nodes show ---------------------------------------------------------------------------
    def attr(self, ino: InodeNo) -> Attr:
        node = self.node(ino)
        if isinstance(node, View):
            return self._catalog.attr(node.ino, node.at).renumbered(ino)
        if isinstance(node, VersionFile):
            return self._version_attr(ino, self._version(node))
        root = self._catalog.attr(ROOT_INO if isinstance(node, SnapshotList) else node.ino)
        mode = root.mode if isinstance(node, SnapshotList) else stat.S_IFDIR | 0o555
        # Links as a real directory has: 2, plus one for each subdirectory (every snapshot is one).
        nlink = 2 + (self._catalog.snapshot_count() if isinstance(node, SnapshotList) else 0)
        return Attr(ino, stat.S_IFDIR | stat.S_IMODE(mode), root.uid, root.gid, 0, 0, root.mtime_ns,
                    root.mtime_ns, root.ctime_ns, VersionNo(0), nlink)

    @staticmethod
    def _version_attr(ino: InodeNo, v: Version) -> Attr:
        """A version shown as a file: the owner and permissions it was made with, its size and times."""
        return Attr(ino, stat.S_IFREG | stat.S_IMODE(v.mode), v.uid, v.gid, 0, v.size, v.mtime_ns, v.mtime_ns,
                    v.time_ns, VersionNo(v.vno), 1)

    def _version_file(self, ino: InodeNo, vno: int) -> VersionFile | None:
        v = self._catalog.version(ino, vno)
        return VersionFile(ino, vno, v.hash) if v is not None else None

    def _version(self, node: VersionFile) -> Version:
        v = self._catalog.version(node.ino, node.vno)
        if v is None or v.hash != node.content:
            raise NotFound(f"version {node.vno} of inode {node.ino} is gone or renumbered")
        return v

    def content(self, ino: InodeNo) -> Version | None:
        """The version a synthetic file shows (None: an empty file)."""
        node = self.node(ino)
        if isinstance(node, VersionFile):
            return self._version(node)
        if isinstance(node, View):
            return self._catalog.version_at(node.ino, node.at)
        return None

    def readlink(self, ino: InodeNo) -> bytes:
        node = self.node(ino)
        if not isinstance(node, View):
            raise NotFound("not a symlink")
        return self._catalog.readlink(node.ino)

    def readdir(self, ino: InodeNo, after: int, limit: int) -> list[tuple[int, bytes, Attr]]:
        """Entries of a synthetic directory with their attributes (cookie, name, attr)."""
        node = self.node(ino)
        if isinstance(node, VersionList):
            # Attributes from the listing itself: one query for thousands of versions, not three each.
            return [(v.vno, str(v.vno).encode(),
                     self._version_attr(self.ino(VersionFile(node.ino, v.vno, v.hash)), v))
                    for v in self._catalog.versions_after(node.ino, after, limit)]
        if isinstance(node, View):
            # Attributes from the listing's own query, as for versions.
            return [(e.cookie, e.name, attr.renumbered(self.ino(View(e.ino, node.at))))
                    for e, attr in self._catalog.readdir_attrs(node.ino, after, limit, at=node.at)]
        children: list[tuple[int, bytes, Node]] = []
        if isinstance(node, SnapshotList):
            snaps = self._catalog.snapshots()[after : after + limit]
            children = [(after + i + 1, s.name.encode(errors="surrogateescape"), View(ROOT_INO, s.commit_no))
                        for i, s in enumerate(snaps)]
        return [(cookie, name, self.attr(self.ino(child))) for cookie, name, child in children]

    def xattr_source(self, ino: InodeNo) -> tuple[InodeNo, int]:
        """The real inode and commit whose extended attributes a synthetic node shows."""
        node = self.node(ino)
        if isinstance(node, View):
            return node.ino, node.at
        raise NoData("no extended attributes here")
