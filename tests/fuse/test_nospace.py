"""A full disk under the store: ENOSPC to the writer, nothing saved is lost, the mount keeps working."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.conftest import Mount, vfs

pytestmark = pytest.mark.fuse


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Mount]:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], check=True)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        vfs("init", str(disk / "store"))
        m = Mount(disk / "store", mnt)
        m.start()
        try:
            yield m
        finally:
            m.cleanup()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_disk_is_enospc_and_loses_nothing(small_mount: Mount) -> None:
    mnt = small_mount.path
    (mnt / "saved.txt").write_text("keep me\n")
    chunk = os.urandom(1 << 20)
    with pytest.raises(OSError) as info, open(mnt / "big.bin", "wb") as f:
        for _ in range(200):
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    assert info.value.errno == errno.ENOSPC
    # The mount still answers, and what was saved is intact.
    assert (mnt / "saved.txt").read_text() == "keep me\n"
    assert "saved.txt" in os.listdir(mnt)
    # Freeing space lets work go on.
    (mnt / "big.bin").unlink()
    (mnt / "after.txt").write_text("written after the disk was full\n")
    small_mount.stop()
    small_mount.start()
    assert (mnt / "saved.txt").read_text() == "keep me\n"
    assert (mnt / "after.txt").read_text() == "written after the disk was full\n"
