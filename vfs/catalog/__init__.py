"""The SQLite catalog: inodes, directory entries, versions, xattrs, snapshots, chunk locations."""

from vfs.catalog.catalog import Attr, Catalog, Commit, DirEntry, Snapshot, TreeEntry, Version, VersionInfo
from vfs.catalog.schema import LIVE

__all__ = ["LIVE", "Attr", "Catalog", "Commit", "DirEntry", "Snapshot", "TreeEntry", "Version", "VersionInfo"]
