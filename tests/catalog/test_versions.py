"""Content versions: numbering per file, empty content, and the commit each save gets."""

from __future__ import annotations

import threading

from tests.catalog.helpers import content, mkfile
from vfs.catalog import Catalog
from vfs.store import codec
from vfs.types import ROOT_INO


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


def test_has_chunk_answers_while_the_catalog_lock_is_held(cat: Catalog) -> None:
    """Ingest threads ask has_chunk for every chunk: it must not queue behind the loop's transactions
    (the catalog lock), yet see every committed version's chunks."""
    f = mkfile(cat, ROOT_INO, b"f")
    assert not cat.has_chunk(codec.chunk_id(b"one"))
    cat.commit_version(f, content(b"one"))
    answers: list[bool] = []
    with cat._lock:  # as a transaction of the loop would
        asker = threading.Thread(target=lambda: answers.append(cat.has_chunk(codec.chunk_id(b"one"))))
        asker.start()
        asker.join(timeout=30)
        assert answers == [True], "has_chunk waited for the catalog lock"
    cat.commit_version(f, content(b"two"))
    assert cat.has_chunk(codec.chunk_id(b"two"))
