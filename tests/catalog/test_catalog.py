"""The SQLite catalog: tree operations, versions, xattrs, snapshots and time travel."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.helpers import commit_time, parent_of
from vfs.catalog import LIVE, NAME_MAX, Catalog, DirEntry
from vfs.errors import (
    Exists,
    InvalidArgument,
    IsADirectory,
    NameTooLong,
    NoData,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
)
from vfs.store import ChunkLocation, Ingested, codec
from vfs.types import ROOT_INO, ChunkId, InodeNo, PackNo

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755


@pytest.fixture
def cat(tmp_path: Path) -> Iterator[Catalog]:
    c = Catalog.initialize(tmp_path / "catalog.db", "test-store", {}, 1000, 1000)
    yield c
    assert c.check() == []
    c.close()


def mkfile(cat: Catalog, parent: InodeNo, name: bytes) -> InodeNo:
    return cat.create(parent, name, FILE, 1000, 1000).ino


def mkdir(cat: Catalog, parent: InodeNo, name: bytes) -> InodeNo:
    return cat.create(parent, name, DIR, 1000, 1000).ino


def content(data: bytes) -> Ingested:
    """Ingested content with made-up pack locations (the catalog never reads packs)."""
    cid = codec.chunk_id(data)
    loc = ChunkLocation(cid, PackNo(1), 16, codec.RAW, len(data), len(data))
    return Ingested(len(data), codec.chunk_id(data), [(cid, len(data))] if data else [], [loc] if data else [])


def names(cat: Catalog, parent: InodeNo, at: int = LIVE) -> list[bytes]:
    return [e.name for e in cat.readdir(parent, at=at)]


# -- creating and looking up ------------------------------------------------------------------------
def test_new_catalog_has_an_empty_root(cat: Catalog) -> None:
    a = cat.attr(ROOT_INO)
    assert a.is_dir and stat.S_IMODE(a.mode) == 0o755 and (a.uid, a.gid) == (1000, 1000)
    assert cat.readdir(ROOT_INO) == []
    assert cat.head().no == 1
    assert cat.meta("store_id") == "test-store"


def test_create_lookup_readdir(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"dir")
    f = mkfile(cat, d, b"file")
    assert cat.lookup(ROOT_INO, b"dir") == d
    assert cat.lookup(d, b"file") == f
    assert cat.lookup(d, b"nothing") is None
    assert cat.lookup(ROOT_INO, b"file") is None
    assert [(e.name, e.ino) for e in cat.readdir(d)] == [(b"file", f)]
    a = cat.attr(f)
    assert (a.mode, a.size, a.vno, a.nlink, a.is_dir) == (FILE, 0, 0, 1, False)
    assert parent_of(cat, d) == ROOT_INO


def test_create_errors(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    head = cat.head().no
    with pytest.raises(Exists):
        mkfile(cat, ROOT_INO, b"f")
    with pytest.raises(NotADirectory):
        mkfile(cat, f, b"x")
    with pytest.raises(NotFound):
        mkfile(cat, InodeNo(999), b"x")
    for bad in (b"", b".", b"..", b"a/b", b"a\0b"):
        with pytest.raises(InvalidArgument):
            mkfile(cat, ROOT_INO, bad)
    assert cat.head().no == head  # a failed change leaves no commit behind


def test_name_length_limit(cat: Catalog) -> None:
    assert NAME_MAX == 255
    with pytest.raises(NameTooLong):
        mkfile(cat, ROOT_INO, b"a" * 256)
    with pytest.raises(NameTooLong):
        mkfile(cat, ROOT_INO, "é".encode() * 128)  # 128 characters, 256 bytes
    ok = [b"a" * 255, "é".encode() * 127 + b"x"]
    for name in ok:
        assert len(name) == 255
        mkfile(cat, ROOT_INO, name)
    assert sorted(names(cat, ROOT_INO)) == sorted(ok)
    f = cat.lookup(ROOT_INO, b"a" * 255)
    assert f is not None
    with pytest.raises(NameTooLong):
        cat.rename(ROOT_INO, b"a" * 255, ROOT_INO, b"b" * 256)
    with pytest.raises(NameTooLong):
        cat.link(f, ROOT_INO, b"c" * 256)


def test_non_ascii_names(cat: Catalog) -> None:
    weird = ["Ärger.txt", "日本語のファイル", "emoji 🎉", "crlf\r\n", " leading space", "tab\there"]
    raw = [n.encode() for n in weird] + [b"\xff\xfe not utf-8", b"\x01"]
    inos = {name: mkfile(cat, ROOT_INO, name) for name in raw}
    assert names(cat, ROOT_INO) == raw
    for name, ino in inos.items():
        assert cat.lookup(ROOT_INO, name) == ino
    # Different bytes are different names even if they look alike (no normalization).
    mkfile(cat, ROOT_INO, "A\u0308rger.txt".encode())
    assert len(names(cat, ROOT_INO)) == len(raw) + 1


# -- readdir cookies ------------------------------------------------------------------------------
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


# -- unlink and rmdir -------------------------------------------------------------------------------
def test_unlink_and_rmdir_errors(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    f = mkfile(cat, d, b"f")
    with pytest.raises(NotFound):
        cat.unlink(ROOT_INO, b"nothing")
    with pytest.raises(NotFound):
        cat.unlink(ROOT_INO, b"nothing", rmdir=True)
    with pytest.raises(IsADirectory):
        cat.unlink(ROOT_INO, b"d")
    with pytest.raises(NotADirectory):
        cat.unlink(d, b"f", rmdir=True)
    with pytest.raises(NotEmpty):
        cat.unlink(ROOT_INO, b"d", rmdir=True)
    assert cat.unlink(d, b"f") == f
    assert cat.attr(f).nlink == 0  # the inode lives on (open files, history)
    assert cat.unlink(ROOT_INO, b"d", rmdir=True) == d
    assert cat.readdir(ROOT_INO) == []


def test_unlink_touches_the_directory(cat: Catalog) -> None:
    mkfile(cat, ROOT_INO, b"f")
    before = cat.attr(ROOT_INO)
    cat.unlink(ROOT_INO, b"f")
    after = cat.attr(ROOT_INO)
    assert after.mtime_ns >= before.mtime_ns and after.ctime_ns >= before.ctime_ns


# -- rename --------------------------------------------------------------------------------------------
def test_rename_within_and_across_directories(cat: Catalog) -> None:
    a = mkdir(cat, ROOT_INO, b"a")
    b = mkdir(cat, ROOT_INO, b"b")
    f = mkfile(cat, a, b"f")
    assert cat.rename(a, b"f", a, b"g") is None
    assert (cat.lookup(a, b"f"), cat.lookup(a, b"g")) == (None, f)
    assert cat.rename(a, b"g", b, b"h") is None
    assert names(cat, a) == [] and names(cat, b) == [b"h"]
    assert cat.attr(f).nlink == 1
    # A directory moves with its contents; its parent changes.
    sub = mkdir(cat, a, b"sub")
    mkfile(cat, sub, b"inner")
    cat.rename(a, b"sub", b, b"sub2")
    assert parent_of(cat, sub) == b
    assert names(cat, sub) == [b"inner"]


def test_rename_over_a_file_replaces_it(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    g = mkfile(cat, ROOT_INO, b"g")
    assert cat.rename(ROOT_INO, b"f", ROOT_INO, b"g") == g
    assert names(cat, ROOT_INO) == [b"g"]
    assert cat.lookup(ROOT_INO, b"g") == f
    assert cat.attr(g).nlink == 0


def test_rename_directories(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    empty = mkdir(cat, ROOT_INO, b"empty")
    full = mkdir(cat, ROOT_INO, b"full")
    mkfile(cat, full, b"x")
    f = mkfile(cat, ROOT_INO, b"f")
    with pytest.raises(NotEmpty):
        cat.rename(ROOT_INO, b"d", ROOT_INO, b"full")
    with pytest.raises(NotADirectory):
        cat.rename(ROOT_INO, b"d", ROOT_INO, b"f")
    with pytest.raises(IsADirectory):
        cat.rename(ROOT_INO, b"f", ROOT_INO, b"empty")
    assert cat.rename(ROOT_INO, b"d", ROOT_INO, b"empty") == empty
    assert cat.lookup(ROOT_INO, b"empty") == d
    assert cat.lookup(ROOT_INO, b"f") == f


def test_moving_a_directory_into_itself_is_invalid(cat: Catalog) -> None:
    a = mkdir(cat, ROOT_INO, b"a")
    b = mkdir(cat, a, b"b")
    c = mkdir(cat, b, b"c")
    head = cat.head().no
    with pytest.raises(InvalidArgument):
        cat.rename(ROOT_INO, b"a", a, b"a2")
    with pytest.raises(InvalidArgument):
        cat.rename(ROOT_INO, b"a", c, b"a2")
    with pytest.raises(InvalidArgument):
        cat.rename(ROOT_INO, b"a", c, b"x", exchange=False)
    mkdir(cat, c, b"x")
    with pytest.raises(InvalidArgument):
        cat.rename(ROOT_INO, b"a", c, b"x", exchange=True)
    with pytest.raises(InvalidArgument):
        cat.rename(c, b"x", ROOT_INO, b"a", exchange=True)
    assert cat.lookup(ROOT_INO, b"a") == a and parent_of(cat, c) == b
    assert cat.head().no == head + 1  # only the mkdir committed


def test_rename_noreplace(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    g = mkfile(cat, ROOT_INO, b"g")
    with pytest.raises(Exists):
        cat.rename(ROOT_INO, b"f", ROOT_INO, b"g", noreplace=True)
    assert (cat.lookup(ROOT_INO, b"f"), cat.lookup(ROOT_INO, b"g")) == (f, g)
    cat.rename(ROOT_INO, b"f", ROOT_INO, b"h", noreplace=True)
    assert cat.lookup(ROOT_INO, b"h") == f


def test_rename_exchange(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    f = mkfile(cat, ROOT_INO, b"f")
    g = mkfile(cat, d, b"g")
    assert cat.rename(ROOT_INO, b"f", d, b"g", exchange=True) is None
    assert cat.lookup(ROOT_INO, b"f") == g and cat.lookup(d, b"g") == f
    # A directory and a file trade places too.
    assert cat.rename(ROOT_INO, b"d", ROOT_INO, b"f", exchange=True) is None
    assert cat.lookup(ROOT_INO, b"f") == d and cat.lookup(ROOT_INO, b"d") == g
    with pytest.raises(NotFound):
        cat.rename(ROOT_INO, b"d", ROOT_INO, b"missing", exchange=True)
    assert (cat.attr(f).nlink, cat.attr(g).nlink) == (1, 1)


def test_rename_between_links_of_one_inode_does_nothing(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    cat.link(f, ROOT_INO, b"g")
    for exchange in (False, True):
        assert cat.rename(ROOT_INO, b"f", ROOT_INO, b"g", exchange=exchange) is None
        assert names(cat, ROOT_INO) == [b"f", b"g"]
        assert cat.attr(f).nlink == 2
    # ... and so does renaming a name onto itself.
    for exchange in (False, True):
        assert cat.rename(ROOT_INO, b"f", ROOT_INO, b"f", exchange=exchange) is None
        assert names(cat, ROOT_INO) == [b"f", b"g"]
        assert cat.attr(f).nlink == 2


def test_rename_errors(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    with pytest.raises(NotFound):
        cat.rename(ROOT_INO, b"missing", ROOT_INO, b"x")
    with pytest.raises(NotADirectory):
        cat.rename(ROOT_INO, b"f", f, b"x")
    with pytest.raises(InvalidArgument):
        cat.rename(ROOT_INO, b"f", ROOT_INO, b"a/b")


# -- links ------------------------------------------------------------------------------------------
def test_link_counts(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    f = mkfile(cat, ROOT_INO, b"f")
    assert cat.link(f, d, b"f2").nlink == 2
    assert cat.link(f, ROOT_INO, b"f3").nlink == 3
    with pytest.raises(Exists):
        cat.link(f, ROOT_INO, b"f3")
    with pytest.raises(NotPermitted):
        cat.link(d, ROOT_INO, b"d2")
    cat.unlink(ROOT_INO, b"f")
    assert cat.attr(f).nlink == 2
    mkfile(cat, ROOT_INO, b"other")
    cat.rename(ROOT_INO, b"other", d, b"f2")  # replaces one link
    assert cat.attr(f).nlink == 1


def dir_links(cat: Catalog, *dirs: InodeNo, at: int = LIVE) -> list[int]:
    return [cat.attr(d, at).nlink for d in dirs]


def test_directory_links_are_two_plus_subdirectories(cat: Catalog) -> None:
    """As on ext4, kept by mkdir, rmdir, rename and exchange, and as of every commit."""
    a = mkdir(cat, ROOT_INO, b"a")
    b = mkdir(cat, ROOT_INO, b"b")
    assert dir_links(cat, ROOT_INO, a, b) == [4, 2, 2]
    mkfile(cat, a, b"file")
    cat.create(a, b"fifo", stat.S_IFIFO | 0o644, 0, 0)
    assert dir_links(cat, a) == [2]  # only directories count
    sub = mkdir(cat, a, b"sub")
    mkdir(cat, sub, b"inner")
    assert dir_links(cat, a, sub) == [3, 3]
    before_moves = cat.head().no
    cat.rename(a, b"sub", b, b"sub")  # to another parent
    assert dir_links(cat, ROOT_INO, a, b, sub) == [4, 2, 3, 3]
    cat.rename(b, b"sub", b, b"moved")  # within one parent
    assert dir_links(cat, b) == [3]
    mkdir(cat, a, b"empty")
    cat.rename(b, b"moved", a, b"empty")  # over an empty directory in another parent
    assert dir_links(cat, a, b) == [3, 2]
    mkdir(cat, a, b"e1")
    mkdir(cat, a, b"e2")
    cat.rename(a, b"e2", a, b"e1")  # over an empty directory in the same parent
    assert dir_links(cat, a) == [4]
    mkfile(cat, b, b"f")
    cat.rename(a, b"empty", b, b"f", exchange=True)  # a directory and a file trade parents
    assert dir_links(cat, a, b) == [3, 3]
    mkdir(cat, a, b"d2")
    cat.rename(a, b"d2", b, b"f", exchange=True)  # two directories trade places: no count changes
    assert dir_links(cat, a, b) == [4, 3]
    cat.unlink(a, b"e1", rmdir=True)
    assert dir_links(cat, ROOT_INO, a, b) == [4, 3, 3]
    assert dir_links(cat, ROOT_INO, a, b, sub, at=before_moves) == [4, 3, 2, 3]
    assert cat.check() == []


def test_a_catalog_of_schema_1_gets_subdirectory_counts_for_every_state(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "x", {}, 0, 0)
    a = mkdir(cat, ROOT_INO, b"a")
    mkdir(cat, a, b"one")
    mkfile(cat, a, b"file")
    mkdir(cat, a, b"two")
    two = cat.head().no
    cat.rename(a, b"one", ROOT_INO, b"one")
    cat.unlink(a, b"two", rmdir=True)
    expected = {at: dir_links(cat, ROOT_INO, a, at=at) for at in range(1, cat.head().no + 1) if at >= 2}
    assert expected[two] == [3, 4] and expected[cat.head().no] == [4, 2]
    cat.close()
    with sqlite3.connect(path) as db:  # as version 1 made it
        db.execute("ALTER TABLE inode_states DROP COLUMN subdirs")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()
    cat = Catalog.open(path)
    try:
        assert cat.meta("schema_version") == "2"
        assert {at: dir_links(cat, ROOT_INO, a, at=at) for at in expected} == expected
        assert cat.check() == []
        mkdir(cat, a, b"three")
        assert dir_links(cat, a) == [3]
    finally:
        cat.close()


# -- attributes, xattrs --------------------------------------------------------------------------------
def test_set_attr_keeps_the_file_type_and_its_history(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    c1 = cat.head().no
    a = cat.set_attr(f, mode=stat.S_IFDIR | 0o600, uid=5, gid=6, atime_ns=111, mtime_ns=222)
    c2 = cat.head().no
    assert (a.mode, a.uid, a.gid, a.atime_ns, a.mtime_ns) == (stat.S_IFREG | 0o600, 5, 6, 111, 222)
    cat.set_attr(f, mode=0o4755)
    assert cat.attr(f).mode == stat.S_IFREG | 0o4755
    assert cat.attr(f, c1).mode == FILE and cat.attr(f, c1).uid == 1000
    assert cat.attr(f, c2).mode == stat.S_IFREG | 0o600
    assert cat.attr(f).uid == 5  # unchanged fields carry over
    with pytest.raises(NotFound):
        cat.set_attr(InodeNo(999), mode=0o644)


def test_xattrs(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    with pytest.raises(NoData):
        cat.getxattr(f, b"user.a")
    with pytest.raises(NoData):
        cat.setxattr(f, b"user.a", b"1", replace=True)
    cat.setxattr(f, b"user.a", b"1", create=True)
    c1 = cat.head().no
    with pytest.raises(Exists):
        cat.setxattr(f, b"user.a", b"2", create=True)
    cat.setxattr(f, b"user.a", b"2", replace=True)
    cat.setxattr(f, b"user.b", b"\x00binary\xff")
    c2 = cat.head().no
    assert cat.getxattr(f, b"user.a") == b"2"
    assert cat.listxattr(f) == [b"user.a", b"user.b"]
    cat.removexattr(f, b"user.a")
    with pytest.raises(NoData):
        cat.removexattr(f, b"user.a")
    with pytest.raises(NoData):
        cat.getxattr(f, b"user.a")
    assert cat.listxattr(f) == [b"user.b"]
    assert cat.getxattr(f, b"user.b") == b"\x00binary\xff"
    # History.
    assert cat.getxattr(f, b"user.a", at=c1) == b"1"
    assert cat.listxattr(f, at=c1) == [b"user.a"]
    assert cat.getxattr(f, b"user.a", at=c2) == b"2"
    assert cat.listxattr(f, at=c2) == [b"user.a", b"user.b"]


def test_symlink(cat: Catalog) -> None:
    a = cat.create(ROOT_INO, b"l", stat.S_IFLNK | 0o777, 0, 0, target=b"../some/where")
    assert a.size == len(b"../some/where")
    assert cat.readlink(a.ino) == b"../some/where"
    with pytest.raises(InvalidArgument):
        cat.readlink(mkfile(cat, ROOT_INO, b"f"))


# -- versions -------------------------------------------------------------------------------------------
def test_versions_are_numbered_per_inode_and_never_renumbered(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    g = mkfile(cat, ROOT_INO, b"g")
    vf = [cat.commit_version(f, content(b"f%d" % i)) for i in range(3)]
    vg = cat.commit_version(g, content(b"g0"))
    vf.append(cat.commit_version(f, content(b"f3"), mtime_ns=12345, origin="restore"))
    assert [v.vno for v in vf] == [1, 2, 3, 4] and vg.vno == 1
    assert [v.vno for v in cat.versions(f)] == [1, 2, 3, 4]
    assert cat.versions(f) == vf
    assert cat.version(f, 2) == vf[1]
    assert cat.version(f, 9) is None
    a = cat.attr(f)
    assert (a.vno, a.size, a.mtime_ns) == (4, 2, 12345)
    assert vf[3].origin == "restore"
    assert cat.version_by_hash(codec.chunk_id(b"g0")) == vg
    # Renames and unlinks do not touch version numbers; a new version continues the count.
    cat.rename(ROOT_INO, b"f", ROOT_INO, b"f-renamed")
    cat.unlink(ROOT_INO, b"f-renamed")
    assert cat.commit_version(f, content(b"late")).vno == 5
    assert [v.vno for v in cat.versions(f)] == [1, 2, 3, 4, 5]
    assert cat.has_chunk(codec.chunk_id(b"f0"))
    assert cat.locate(codec.chunk_id(b"f0")).plain_len == 2


def test_empty_version(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    cat.commit_version(f, content(b"data"))
    v = cat.commit_version(f, content(b""))
    assert (v.vno, v.size, v.chunks) == (2, 0, [])
    assert cat.version_at(f) == v


# -- time travel ------------------------------------------------------------------------------------------
def observe(cat: Catalog, at: int) -> dict[bytes, Any]:
    """Everything visible from the root at commit `at`, by path."""
    out: dict[bytes, Any] = {}

    def walk(ino: InodeNo, path: bytes) -> None:
        attr = cat.attr(ino, at)
        v = cat.version_at(ino, at)
        xattrs = {n: cat.getxattr(ino, n, at) for n in cat.listxattr(ino, at)}
        out[path] = (attr, v.hash if v else None, xattrs)
        if attr.is_dir:
            for e in cat.readdir(ino, at=at):
                assert cat.lookup(ino, e.name, at) == e.ino
                walk(e.ino, path + b"/" + e.name)

    walk(ROOT_INO, b"")
    return out


def test_time_travel_shows_every_earlier_state(cat: Catalog) -> None:
    history: list[tuple[int, dict[bytes, Any]]] = []

    def step() -> None:
        history.append((cat.head().no, observe(cat, LIVE)))

    step()
    docs = mkdir(cat, ROOT_INO, b"docs")
    step()
    f = mkfile(cat, docs, b"report.txt")
    step()
    cat.commit_version(f, content(b"draft 1"))
    step()
    cat.commit_version(f, content(b"draft 2, longer"))
    step()
    cat.setxattr(f, b"user.tag", b"important")
    step()
    cat.rename(docs, b"report.txt", ROOT_INO, b"final.txt")
    step()
    g = mkfile(cat, docs, b"notes")
    cat.commit_version(g, content(b"notes"))
    step()
    cat.link(g, ROOT_INO, b"notes-link")
    step()
    cat.set_attr(f, mode=0o600)
    step()
    cat.unlink(ROOT_INO, b"final.txt")
    step()
    cat.unlink(docs, b"notes")
    cat.unlink(ROOT_INO, b"notes-link")
    cat.unlink(ROOT_INO, b"docs", rmdir=True)
    step()
    again = mkfile(cat, ROOT_INO, b"final.txt")  # the old name, a new inode
    cat.commit_version(again, content(b"rewritten"))
    step()

    for no, seen in history:
        assert observe(cat, no) == seen, f"tree at commit {no} differs from what it was then"
    assert observe(cat, LIVE) == history[-1][1]

    # Deleted files are still there at old commits, with their content of the time.
    at_draft1 = history[3][0]
    assert cat.lookup(docs, b"report.txt", at_draft1) == f
    v = cat.version_at(f, at_draft1)
    assert v is not None and v.vno == 1 and v.hash == codec.chunk_id(b"draft 1")
    assert cat.lookup(ROOT_INO, b"final.txt", history[6][0]) == f
    assert cat.lookup(ROOT_INO, b"final.txt", history[10][0]) is None
    assert cat.lookup(ROOT_INO, b"final.txt") == again
    assert cat.attr(g, history[8][0]).nlink == 2
    assert cat.attr(g).nlink == 0
    # An inode did not exist before it was created.
    with pytest.raises(NotFound):
        cat.attr(f, history[1][0])
    assert cat.version_at(f, history[2][0]) is None  # created, never written yet


def test_commit_at_time(cat: Catalog) -> None:
    for i in range(5):
        mkfile(cat, ROOT_INO, b"f%d" % i)
    head = cat.head()
    times = {n: commit_time(cat, n) for n in range(1, head.no + 1)}
    assert all(t is not None for t in times.values())
    assert list(times.values()) == sorted(times.values())  # type: ignore[type-var]
    for n, t in times.items():
        assert t is not None
        got = cat.commit_at_time(t)
        assert got is not None and got >= n and times[got] == t
        nxt = times.get(n + 1)
        if nxt is not None and nxt > t:
            assert cat.commit_at_time(nxt - 1) == n
    first = times[1]
    assert first is not None
    assert cat.commit_at_time(first - 1) is None
    assert cat.commit_at_time(head.time_ns + 10**12) == head.no
    assert commit_time(cat, head.no + 1) is None


def test_commit_times_never_go_backwards(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    import vfs.catalog.transactions as module

    mkfile(cat, ROOT_INO, b"a")
    t = cat.head().time_ns
    monkeypatch.setattr(module, "now_ns", lambda: t - 10**9)  # the clock stepped back
    mkfile(cat, ROOT_INO, b"b")
    assert cat.head().time_ns == t
    assert cat.commit_at_time(t) == cat.head().no


def test_a_batch_of_versions_is_dated_by_each_save(cat: Catalog) -> None:
    """commit_versions gives each version a commit dated when it was saved, never before the last one."""
    f, g, h = (mkfile(cat, ROOT_INO, n) for n in (b"f", b"g", b"h"))
    last = cat.head().time_ns
    vf, vg, vh = cat.commit_versions([(f, content(b"f"), None, last + 10), (g, content(b"g"), 7, last + 20),
                                      (h, content(b"h"), None, last + 5)])
    assert (vf.time_ns, vg.time_ns, vh.time_ns) == (last + 10, last + 20, last + 20)  # h: not before g's
    assert vg.commit_no == vf.commit_no + 1 == vh.commit_no - 1 == cat.head().no - 1
    assert (vf.mtime_ns, vg.mtime_ns) == (last + 10, 7)
    assert cat.version_at(f, cat.commit_at_time(last + 15) or 0) == vf
    assert cat.version_at(g, cat.commit_at_time(last + 15) or 0) is None
    assert cat.commit_versions([(f, content(b"f2"), None, last)])[0].time_ns == last + 20


def _row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    db.close()
    return counts


def test_snapshots_are_one_row_naming_a_commit(cat: Catalog) -> None:
    d = mkdir(cat, ROOT_INO, b"d")
    for i in range(20):
        f = mkfile(cat, d, b"f%d" % i)
        cat.commit_version(f, content(b"%d" % i))
    before = _row_counts(cat.path)
    snap = cat.create_snapshot("monday")
    after = _row_counts(cat.path)
    assert snap.commit_no == cat.head().no and snap.name == "monday"
    assert after == {**before, "snapshots": before["snapshots"] + 1, "commits": before["commits"] + 1}
    head = cat.head().no
    with pytest.raises(Exists):
        cat.create_snapshot("monday")
    assert cat.head().no == head
    tree = observe(cat, snap.commit_no)
    cat.unlink(d, b"f3")
    cat.commit_version(mkfile(cat, d, b"new"), content(b"new"))
    cat.create_snapshot("tuesday")
    assert observe(cat, snap.commit_no) == tree
    assert cat.snapshot("monday") == snap
    assert cat.snapshot("nope") is None
    assert [s.name for s in cat.snapshots()] == ["monday", "tuesday"]
    cat.delete_snapshot("monday")
    with pytest.raises(NotFound):
        cat.delete_snapshot("monday")
    assert [s.name for s in cat.snapshots()] == ["tuesday"]


def test_catalog_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "catalog.db"
    cat = Catalog.initialize(path, "x", {"a": 1}, os.getuid(), os.getgid())
    f = mkfile(cat, ROOT_INO, b"f")
    v = cat.commit_version(f, content(b"hello"))
    seen = observe(cat, LIVE)
    cat.close()
    cat = Catalog.open(path)
    try:
        assert observe(cat, LIVE) == seen
        assert cat.version(f, 1) == v
        assert cat.check() == []
        assert cat.commit_version(f, content(b"more")).vno == 2
    finally:
        cat.close()


def test_check_reports_damage(cat: Catalog) -> None:
    f = mkfile(cat, ROOT_INO, b"f")
    cat.commit_version(f, content(b"hello"))
    with sqlite3.connect(cat.path) as db:
        db.execute("DELETE FROM chunks")
    db.close()
    problems = cat.check()
    assert len(problems) == 1 and codec.chunk_id(b"hello").hex() in problems[0]
    with sqlite3.connect(cat.path) as db:  # undo, so the fixture's final check passes
        db.execute("INSERT INTO chunks VALUES (?, 1, 16, 0, 5, 5)", (ChunkId(codec.chunk_id(b"hello")),))
    db.close()
