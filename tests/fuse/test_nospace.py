"""A full disk under the store: ENOSPC to the writer, nothing saved is lost, the mount keeps working."""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import blake3
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


@pytest.mark.parametrize("direct", [False, True], ids=["buffered", "O_DIRECT"])
def test_a_write_the_full_disk_refused_never_reads_back_as_written(small_mount: Mount, direct: bool) -> None:
    """With the writeback cache, write(2) returns once the bytes are in the kernel's page cache; when
    they cannot be stored, close reports it, but the kernel kept the pages (and the size): reading the
    file served 40 MiB the store never had. Reads must show what the store holds, as after a remount.
    An O_DIRECT write bypasses that cache: its error comes at once (it was EIO, not ENOSPC)."""
    mnt, disk = small_mount.path, small_mount.store.parent
    (mnt / "saved.txt").write_text("keep me\n")
    ballast = disk / "ballast"  # beside the store: leaves it ~12 MiB, freed before the remount
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    ballast.write_bytes(bytes(free - (12 << 20)))
    block = mmap.mmap(-1, 1 << 20)  # page-aligned, as O_DIRECT wants
    errors = []
    fd = os.open(mnt / "big.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0), 0o644)
    try:
        for _ in range(40):
            block[:] = os.urandom(1 << 20)
            os.write(fd, block)
    except OSError as e:
        errors.append(e.errno)
    finally:
        try:
            os.close(fd)
        except OSError as e:
            errors.append(e.errno)
    assert errors and set(errors) == {errno.ENOSPC}  # buffered: at close, as the kernel took every write
    seen = (mnt / "big.bin").read_bytes()  # nothing dropped: whatever the kernel kept
    small_mount.stop()  # what it cannot commit stays in staging/ for the next mount
    ballast.unlink()
    small_mount.start()
    stored = (mnt / "big.bin").read_bytes()
    assert (len(seen), blake3.blake3(seen).hexdigest()) == (len(stored), blake3.blake3(stored).hexdigest())
    assert os.getxattr(mnt / "big.bin", "user.vfs.hash").decode() == blake3.blake3(seen).hexdigest()
    assert (mnt / "saved.txt").read_text() == "keep me\n"


def test_a_store_whose_disk_is_full_mounts_with_its_unsaved_content(small_mount: Mount) -> None:
    """A staging file left by a killed daemon that cannot be committed for lack of space is served and
    committed once there is room: the mount comes up (it refused to, so space could not be freed)."""
    mnt, disk = small_mount.path, small_mount.store.parent
    (mnt / "saved.txt").write_text("keep me\n")
    data = os.urandom(8 << 20)
    f = open(mnt / "open.bin", "wb")  # noqa: SIM115 - kept open across the kill on purpose
    f.write(data)
    f.flush()
    os.fsync(f.fileno())  # in the staging file, not yet committed (the file is still open)
    small_mount.kill9()
    with contextlib.suppress(OSError):
        f.close()  # the mount is gone
    ballast = disk / "ballast"
    ballast.write_bytes(bytes(os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize))
    small_mount.start()
    assert (mnt / "open.bin").read_bytes() == data
    assert (mnt / "saved.txt").read_text() == "keep me\n"
    ballast.unlink()
    small_mount.stop()  # commits it, now that there is room
    assert not any(p.is_file() for p in (small_mount.store / "staging").iterdir())
    small_mount.start()
    assert (mnt / "open.bin").read_bytes() == data
    assert os.getxattr(mnt / "open.bin", "user.vfs.hash").decode() == blake3.blake3(data).hexdigest()
