"""The live attributes the catalog keeps in memory follow every change (only the inodes a change touched
are dropped), and attributes nobody ever set answer without a query (security.capability)."""

from __future__ import annotations

import stat

import pytest

from vfs.catalog import Catalog
from vfs.errors import NoData
from vfs.fs.filesystem import FileSystem
from vfs.repository import Repository
from vfs.types import ROOT_INO, Attr, InodeNo

FILE = stat.S_IFREG | 0o644


def _fresh(repo: Repository, inos: list[InodeNo]) -> dict[InodeNo, Attr | None]:
    """The same attributes read by a catalog connection that caches nothing."""
    other = Catalog.open(repo.catalog.path)
    try:
        out: dict[InodeNo, Attr | None] = {}
        for ino in inos:
            try:
                out[ino] = other.attr(ino)
            except Exception:
                out[ino] = None
        return out
    finally:
        other.close()


def _cached(repo: Repository, inos: list[InodeNo]) -> dict[InodeNo, Attr | None]:
    out: dict[InodeNo, Attr | None] = {}
    for ino in inos:
        try:
            out[ino] = repo.catalog.attr(ino)
        except Exception:
            out[ino] = None
    return out


def test_cached_attributes_follow_links_renames_versions_and_lineage_joins(repo: Repository) -> None:
    cat = repo.catalog
    assert cat.cache_live_attrs
    d = cat.create(ROOT_INO, b"d", stat.S_IFDIR | 0o755, 0, 0).ino
    a = cat.create(d, b"a", FILE, 0, 0).ino
    b = cat.create(ROOT_INO, b"b", FILE, 0, 0).ino
    sub = cat.create(ROOT_INO, b"sub", stat.S_IFDIR | 0o755, 0, 0).ino
    inos = [ROOT_INO, d, a, b, sub]
    steps = [
        lambda: cat.link(a, ROOT_INO, b"a2"),  # a: 2 links
        lambda: repo.commit_bytes(a, b"a v1"),  # a: version 1
        lambda: repo.commit_bytes(b, b"b v1"),
        lambda: repo.commit_bytes(b, b"b v2"),  # b: version 2
        lambda: cat.unlink(ROOT_INO, b"a2"),  # a: 1 link
        lambda: cat.rename(ROOT_INO, b"sub", d, b"sub"),  # root loses a subdirectory, d gains one
        lambda: cat.set_attr(b, mode=0o600, mtime_ns=123),
        # b replaces a, its last name: a save of a, so b's versions are renumbered after a's.
        lambda: cat.rename(ROOT_INO, b"b", d, b"a"),
        lambda: cat.setxattr(b, b"user.x", b"1"),
        lambda: cat.unlink(d, b"a"),
    ]
    for step in steps:
        _cached(repo, inos)  # every attribute in the cache before the change
        step()
        assert _cached(repo, inos) == _fresh(repo, inos)
    assert cat.attr(d).nlink == 3  # its name, '.', and sub's '..'


def test_a_save_keeps_the_attributes_of_its_file_cached(repo: Repository) -> None:
    """A version commit caches the file's new attributes, so the stat after a save asks no query."""
    cat = repo.catalog
    a = cat.create(ROOT_INO, b"a", FILE, 0, 0).ino
    cat.link(a, ROOT_INO, b"a2")
    for content in (b"one", b"two!"):
        cat.attr(a)  # in the cache before the save (as after a create or a stat)
        repo.commit_bytes(a, content)
        assert a in cat._live_attrs
        assert _cached(repo, [a]) == _fresh(repo, [a])
    assert cat.attr(a).vno == 2 and cat.attr(a).size == 4 and cat.attr(a).nlink == 2


@pytest.mark.parametrize("name", [b"security.capability", b"user.never.set"])
async def test_attributes_never_set_answer_nodata_until_set(repo: Repository, name: bytes) -> None:
    fs = FileSystem(repo)
    a = repo.catalog.create(ROOT_INO, b"a", FILE, 0, 0).ino
    b = repo.catalog.create(ROOT_INO, b"b", FILE, 0, 0).ino
    with pytest.raises(NoData):
        await fs.getxattr(a, name)
    assert not repo.catalog.xattr_name_used(name)
    fs.setxattr(a, name, b"\x01\x00\x00\x02")
    assert await fs.getxattr(a, name) == b"\x01\x00\x00\x02"
    with pytest.raises(NoData):
        await fs.getxattr(b, name)
    fs.removexattr(a, name)
    with pytest.raises(NoData):
        await fs.getxattr(a, name)
    # Known from history too: a store opened afresh asks SQLite once and finds the old row.
    other = Catalog.open(repo.catalog.path, cache_live_attrs=True)
    try:
        assert other.xattr_name_used(name)
    finally:
        other.close()
