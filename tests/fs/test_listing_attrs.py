"""A history view's listing takes its entries' attributes from one query: they must be what a lookup of
each entry gives, at every commit (links, subdirectories, versions, metadata changes)."""

from __future__ import annotations

import dataclasses
import stat

from vfs.catalog.schema import LIVE
from vfs.fs.filesystem import FileSystem
from vfs.repository import Repository
from vfs.types import ROOT_INO, Attr, InodeNo

FILE = stat.S_IFREG | 0o644


async def test_listing_attributes_equal_lookups_at_every_commit(repo: Repository) -> None:
    cat = repo.catalog
    commits = []
    d = cat.create(ROOT_INO, b"d", stat.S_IFDIR | 0o755, 0, 0).ino
    a = cat.create(d, b"a", FILE, 0, 0).ino
    commits.append(cat.head().no)
    repo.commit_bytes(a, b"a, version 1\n")
    cat.create(d, b"sub", stat.S_IFDIR | 0o700, 5, 6)
    commits.append(cat.head().no)
    cat.link(a, d, b"a-link")
    repo.commit_bytes(a, b"a, version 2, longer\n")
    cat.create(d, b"s", stat.S_IFLNK | 0o777, 0, 0, target=b"a")
    commits.append(cat.head().no)
    cat.set_attr(a, mode=0o600, mtime_ns=42)
    cat.unlink(d, b"a-link")
    cat.rename(d, b"sub", ROOT_INO, b"sub")
    commits.append(cat.head().no)
    for at in [*commits, LIVE]:
        listed = cat.readdir_attrs(d, 0, 1000, at=at)
        assert [e for e, _ in listed] == cat.readdir(d, 0, 1000, at=at)
        assert [attr for _, attr in listed] == [cat.attr(e.ino, at) for e, _ in listed]
        assert listed, "every commit above shows something in d"
    # Paged as the kernel asks for it.
    first = cat.readdir_attrs(d, 0, 1, at=commits[2])
    rest = cat.readdir_attrs(d, first[-1][0].cookie, 1000, at=commits[2])
    assert first + rest == cat.readdir_attrs(d, 0, 1000, at=commits[2])


async def test_snapshot_listing_shows_the_files_as_they_were(repo: Repository) -> None:
    fs = FileSystem(repo)
    cat = repo.catalog
    files = [cat.create(ROOT_INO, f"f{i}".encode(), FILE, 0, 0).ino for i in range(300)]
    for i, ino in enumerate(files[:10]):
        repo.commit_bytes(ino, b"x" * i)
    await fs.snapshot("then")
    for ino in files[:10]:
        repo.commit_bytes(ino, b"changed since")
    snaps = await fs.lookup(ROOT_INO, b".snapshots")
    then = await fs.lookup(snaps.ino, b"then")
    listed, after = [], 0
    while page := await fs.readdir(then.ino, after, 128):  # more than one page
        listed += page
        after = page[-1][0]
    assert [name for _, name, _ in listed] == [f"f{i}".encode() for i in range(300)]
    for i, (_, name, attr) in enumerate(listed):
        looked_up = await fs.lookup(then.ino, name)
        assert attr == looked_up
        assert attr.size == (i if i < 10 else 0)


def test_renumbered_attributes_differ_only_in_the_inode_number() -> None:
    attr = Attr(*range(1, 12))  # a different value in every field: a field copied into another shows
    assert attr.renumbered(InodeNo(99)) == dataclasses.replace(attr, ino=InodeNo(99))
