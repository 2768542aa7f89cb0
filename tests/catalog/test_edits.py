"""Changing the tree: create, unlink, rename, link and set_attr, with their POSIX errors and link counts."""

from __future__ import annotations

import stat

import pytest

from tests.catalog.helpers import FILE, dir_links, mkdir, mkfile, names, parent_of
from vfs.catalog import NAME_MAX, Catalog
from vfs.errors import (
    Exists,
    InvalidArgument,
    IsADirectory,
    NameTooLong,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
)
from vfs.types import ROOT_INO, InodeNo


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


def test_unlink_adds_a_state_row_only_for_a_file_that_keeps_a_name(cat: Catalog) -> None:
    """A hard link's unlink updates the ctime of the file it leaves; the unlink of a file's last name
    keeps its last state (POSIX asks no new ctime of it), and `rm -rf` pays no row per file."""
    f = mkfile(cat, ROOT_INO, b"f")
    cat.link(f, ROOT_INO, b"g")

    def states() -> list[tuple[int, int]]:
        return cat._all("SELECT commit_from, ctime_ns FROM inode_states WHERE ino = ?", (f,))

    before = states()
    cat.unlink(ROOT_INO, b"g", batched=True)
    assert len(states()) == len(before) + 1 and cat.attr(f).nlink == 1
    linked = states()
    cat.unlink(ROOT_INO, b"f", batched=True)
    assert states() == linked
    assert cat.attr(f).nlink == 0 and cat.attr(f).ctime_ns == linked[-1][1]
    cat.commit_batch()
    assert cat.attr(f).nlink == 0 and cat.readdir(ROOT_INO) == []


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
