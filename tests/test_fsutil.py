"""replace_file: the one way a file is replaced (temporary file, fsync, rename, directory fsync)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vfs.fsutil import replace_file


def test_replace_file_writes_whole_private_files_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    replace_file(path, b"one")
    old = os.umask(0)
    try:
        replace_file(path, bytearray(b"two"))
    finally:
        os.umask(old)
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o600
    replace_file(path, memoryview(b"unit"), mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_replace_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    replace_file(path, b"old")
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError):
        replace_file(tmp_path / "dir", b"new")  # the rename fails: a file cannot replace a directory
    assert path.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["dir", "state.json"]
