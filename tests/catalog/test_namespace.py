"""Reading the tree: the root, listings paged by cookie under concurrent change, symlinks."""

from __future__ import annotations

import stat

import pytest

from tests.catalog.helpers import mkfile
from vfs.catalog import Catalog, DirEntry
from vfs.errors import InvalidArgument
from vfs.types import ROOT_INO


def test_new_catalog_has_an_empty_root(cat: Catalog) -> None:
    a = cat.attr(ROOT_INO)
    assert a.is_dir and stat.S_IMODE(a.mode) == 0o755 and (a.uid, a.gid) == (1000, 1000)
    assert cat.readdir(ROOT_INO) == []
    assert cat.head().no == 1
    assert cat.meta("store_id") == "test-store"


def test_readdir_pages_by_cookie(cat: Catalog) -> None:
    for i in range(25):
        mkfile(cat, ROOT_INO, b"f%02d" % i)
    full = cat.readdir(ROOT_INO)
    cookies = [e.cookie for e in full]
    assert cookies == sorted(cookies) and len(set(cookies)) == 25
    paged: list[DirEntry] = []
    after = 0
    while page := cat.readdir(ROOT_INO, after=after, limit=4):
        paged += page
        after = page[-1].cookie
    assert paged == full
    assert cat.readdir(ROOT_INO) == full  # cookies are stable between listings


def test_readdir_never_skips_or_repeats_under_concurrent_change(cat: Catalog) -> None:
    original = [b"orig%02d" % i for i in range(40)]
    for n in original:
        mkfile(cat, ROOT_INO, n)
    seen: list[bytes] = []
    removed: set[bytes] = set()
    added = 0
    after = 0
    while page := cat.readdir(ROOT_INO, after=after, limit=6):
        seen += [e.name for e in page]
        after = page[-1].cookie
        # Between pages: delete one entry already listed and one not yet listed, add two new ones.
        for victim in (seen[len(seen) // 2], original[min(len(original) - 1, len(seen) + 3)]):
            if victim not in removed:
                cat.unlink(ROOT_INO, victim)
                removed.add(victim)
        for _ in range(2):
            if added < 10:
                mkfile(cat, ROOT_INO, b"new%02d" % added)
                added += 1
    assert len(seen) == len(set(seen)), "an entry was listed twice"
    untouched = [n for n in original if n not in removed]
    assert [n for n in seen if n in untouched] == untouched, "an entry that stayed was skipped"
    # Entries added during the listing come after every original one (cookies only grow).
    first_new = next(i for i, n in enumerate(seen) if n.startswith(b"new"))
    assert all(n.startswith(b"new") for n in seen[first_new:])


def test_readdir_continues_after_a_deleted_cookie(cat: Catalog) -> None:
    for i in range(6):
        mkfile(cat, ROOT_INO, b"f%d" % i)
    page = cat.readdir(ROOT_INO, limit=3)
    cat.unlink(ROOT_INO, b"f2")
    rest = cat.readdir(ROOT_INO, after=page[-1].cookie)
    assert [e.name for e in rest] == [b"f3", b"f4", b"f5"]


def test_symlink(cat: Catalog) -> None:
    a = cat.create(ROOT_INO, b"l", stat.S_IFLNK | 0o777, 0, 0, target=b"../some/where")
    assert a.size == len(b"../some/where")
    assert cat.readlink(a.ino) == b"../some/where"
    with pytest.raises(InvalidArgument):
        cat.readlink(mkfile(cat, ROOT_INO, b"f"))
