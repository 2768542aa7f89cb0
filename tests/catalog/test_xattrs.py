"""Extended attributes: create/replace flags, removal, and their history."""

from __future__ import annotations

import pytest

from tests.catalog.helpers import mkfile
from vfs.catalog import Catalog
from vfs.errors import Exists, NoData
from vfs.types import ROOT_INO


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
