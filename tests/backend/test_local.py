"""LocalBackend: what the contract suite cannot see (temporary files, folders, reserved names)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vfs.backend.local import LocalBackend
from vfs.errors import UsageError


def test_objects_are_files_and_leave_no_temporaries(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path)
    b.put("packs/ab/abcd", b"data")
    assert (tmp_path / "packs/ab/abcd").read_bytes() == b"data"
    assert os.listdir(tmp_path / ".tmp") == []
    assert list(b.list()) == ["packs/ab/abcd"]


def test_delete_removes_emptied_folders(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path)
    b.put("a/b/c", b"1")
    b.put("a/d", b"2")
    b.delete("a/b/c")
    assert not (tmp_path / "a/b").exists() and (tmp_path / "a").is_dir()
    b.delete("a/d")
    assert sorted(os.listdir(tmp_path)) == [".tmp"]


def test_tmp_is_reserved(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path)
    with pytest.raises(UsageError, match="reserved"):
        b.put(".tmp/x", b"x")
