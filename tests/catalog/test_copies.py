"""Checkpoint copies: a consistent single-file copy, its head, and the remote's packs recorded in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.catalog.helpers import content, mkfile
from vfs.catalog import Catalog, copies
from vfs.errors import StoreError
from vfs.types import ROOT_INO, PackNo


def test_a_copy_records_the_remote_packs_and_leaves_out_local_settings(tmp_path: Path) -> None:
    cat = Catalog.initialize(tmp_path / "catalog.db", "x", {}, 0, 0)
    cat.commit_version(mkfile(cat, ROOT_INO, b"f"), content(b"hello"))  # a chunk in pack 1
    cat.set_meta("remote", "{}")
    cat.set_meta("cache_size", "1")
    cat.add_remote_pack(PackNo(7), "packs/old", 1)
    copy = tmp_path / "copy.db"
    cat.backup_to(copy)
    head = cat.head().no
    cat.commit_version(mkfile(cat, ROOT_INO, b"later"), content(b"later"))  # not in the copy
    assert copies.head_and_max_pack(copy) == (head, 1)
    with pytest.raises(StoreError, match="packs the remote lacks: \\[1\\]"):
        copies.record_remote_packs(copy, {PackNo(2): ("packs/b", 20)})
    assert copies.remote_pack_sizes(copy) == {"packs/old": 1}  # a refusal changes nothing
    copies.record_remote_packs(copy, {PackNo(1): ("packs/a", 10), PackNo(2): ("packs/b", 20)})
    assert copies.remote_pack_sizes(copy) == {"packs/a": 10, "packs/b": 20}
    cat.close()
    copied = Catalog.open(copy)
    try:
        assert copied.meta_or_none("remote") is None and copied.meta_or_none("cache_size") is None
        assert copied.remote_packs() == {PackNo(1): ("packs/a", 10), PackNo(2): ("packs/b", 20)}
        assert copied.head().no == head and copied.check() == []
    finally:
        copied.close()
    assert cat.path.stat().st_mode & 0o077 == 0 and copy.stat().st_mode & 0o077 == 0
