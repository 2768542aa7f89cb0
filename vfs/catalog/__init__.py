"""The SQLite catalog: inodes, directory entries, versions, xattrs, snapshots, chunk locations.

The only package that speaks SQL. Its vocabulary: a *commit* is one transaction that changed the tree
and names its state ever after; *at* is a commit number to read the tree as of (LIVE: now); a *version*
is an immutable content of a file; a *checkpoint copy* is a single-file copy of the catalog for the remote.

One object, `Catalog`, built from parts that each do one job over one connection:

    transactions.py   the connection, its lock, write transactions, the commit clock (base of every part)
    catalog.py        opening/creating the file, schema upgrades, WAL checkpoints, fsync, meta; `Catalog`
    timeline.py       commits, their times, snapshots
    namespace.py      reading the tree: lookup, readdir, attr, path_of, readlink
    states.py         row helpers of write transactions (inode states, directory entries, name rules)
    edits.py          changing the tree: create, link, unlink, rename, set_attr
    versions.py       content versions and chunk locations
    restore.py        bringing history back (an old version made current, a deleted file recreated)
    history.py        the history of paths and whole trees (path_spans, tree, tree_stats)
    xattrs.py         extended attributes
    check.py          the catalog's own consistency (fsck)
    retention.py      which versions are held, prune, and the chunk rows gc drops or moves
    remote_packs.py   which packs the remote holds
    copies.py         checkpoint copies (functions over a copy's path; no `Catalog` has them open)
    bulk.py           the bulk loader of benchmarks (a function taking a `Catalog`)
    rows.py, schema.py  the row types; the tables, with a comment on every column

Why mixins (`class Catalog(Restore, TreeEdits, ..., RemotePacks)`) rather than a Catalog composing part
objects: every part shares one connection, one lock and one transaction (a rename writes states,
directory entries and version lineages in one commit; a restore creates a file and a version in one),
so parts are views of one object, not objects of their own. Callers keep one object and the method names
they always used (`catalog.version_at(...)`, not `catalog.versions.version_at(...)`), and each part
states what it builds on by its base classes, which mypy checks: a part can only call what its bases
define (`Restore(TreeEdits, Versions)`), so the dependencies between parts are written down, not implied.

`Attr` is defined in `vfs.types` (fs/ and fuse/ use it without importing the catalog) and re-exported.
"""

from vfs.catalog.catalog import CATALOG_FILE, NAME_MAX, Catalog, now_ns
from vfs.catalog.rows import Commit, DirEntry, Snapshot, TreeEntry, Version, VersionInfo
from vfs.catalog.schema import LIVE
from vfs.types import Attr

__all__ = [
    "CATALOG_FILE",
    "LIVE",
    "NAME_MAX",
    "Attr",
    "Catalog",
    "Commit",
    "DirEntry",
    "Snapshot",
    "TreeEntry",
    "Version",
    "VersionInfo",
    "now_ns",
]
