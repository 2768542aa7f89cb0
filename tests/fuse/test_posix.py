"""POSIX behaviour of the mounted filesystem, exercised through the kernel with ordinary syscalls.

Most tests share one mount (module scope) and work in a fresh subdirectory each, because mounting
costs a second or two; tests that stop, kill or remount the daemon use the per-test `mount` fixture.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import shared_dir
from tests.fuse.conftest import Mount, _is_zombie, is_mounted, new_mount, vfs

pytestmark = pytest.mark.fuse

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
GiB = 1 << 30


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    with shared_dir(tmp_path_factory, "posix") as path, new_mount(path) as m:
        yield m


@pytest.fixture
def d(shared: Mount, request: pytest.FixtureRequest) -> Path:
    """A fresh directory on the shared mount."""
    path = shared.path / request.node.name.replace("[", "_").replace("]", "")
    path.mkdir()
    return path


def _errno_of(fn: object, *args: object, **kwargs: object) -> int:
    assert callable(fn)
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    assert info.value.errno is not None
    return info.value.errno


def _run_py(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def _versions(store: Path, name: bytes) -> int:
    """How many content versions the live file named `name` (anywhere) has, read from the catalog."""
    db = sqlite3.connect(f"file:{store / 'catalog.db'}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT count(*) FROM versions WHERE ino = (SELECT ino FROM dirents WHERE name = ? AND commit_to = ?)",
            (name, 1 << 62),
        ).fetchone()
        return int(row[0])
    finally:
        db.close()


# -- reading and writing ---------------------------------------------------------------------------
def test_write_read_at_offsets(d: Path) -> None:
    p = d / "f"
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        assert os.pwrite(fd, b"hello", 0) == 5
        assert os.pwrite(fd, b"XY", 2) == 2
        assert os.pwrite(fd, b"tail", 100_000) == 4
        assert os.pread(fd, 5, 0) == b"heXYo"
        assert os.pread(fd, 10, 100_000) == b"tail"
        assert os.pread(fd, 10, 50) == b"\0" * 10
        assert os.pread(fd, 10, 200_000) == b""
        assert os.fstat(fd).st_size == 100_004
    finally:
        os.close(fd)
    data = p.read_bytes()
    assert data[:5] == b"heXYo" and data[100_000:] == b"tail" and data[5:100_000] == bytes(99_995)
    assert _errno_of(os.open, p, os.O_RDWR | os.O_CREAT | os.O_EXCL) == errno.EEXIST
    # Rewrite the committed file in the middle, after it was closed.
    with open(p, "r+b") as f:
        f.seek(99_999)
        f.write(b"!")
    assert p.read_bytes()[99_998:] == b"\0!tail"


def test_reads_see_writes_before_close_also_from_another_process(d: Path) -> None:
    p = d / "f"
    with open(p, "wb") as f:
        f.write(b"first")
        f.flush()
        assert p.read_bytes() == b"first"
        out = _run_py("import sys; print(open(sys.argv[1], 'rb').read().decode())", str(p))
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "first"
        f.write(b" second")
        f.flush()
        out = _run_py("import sys; print(open(sys.argv[1], 'rb').read().decode())", str(p))
        assert out.stdout.strip() == "first second"


def test_sparse_file_beyond_4gib(d: Path) -> None:
    p = d / "sparse"
    off = 5 * GiB
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.pwrite(fd, b"far away", off) == 8
        assert os.fstat(fd).st_size == off + 8
        assert os.pread(fd, 8, off) == b"far away"
        assert os.pread(fd, 4096, 4 * GiB) == bytes(4096)
    finally:
        os.close(fd)
    assert p.stat().st_size == off + 8
    with open(p, "rb") as f:
        f.seek(off - 4)
        assert f.read() == b"\0\0\0\0far away"
        f.seek(GiB + 12345)
        assert f.read(100) == bytes(100)


@pytest.mark.slow
def test_sparse_file_beyond_4gib_after_remount(mount: Mount) -> None:
    """The committed version (read from the store, not the staging file) has the hole and the tail."""
    p = mount.path / "sparse"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"far away", 5 * GiB)
    finally:
        os.close(fd)
    mount.stop()
    mount.start()
    assert p.stat().st_size == 5 * GiB + 8
    with open(p, "rb") as f:
        f.seek(5 * GiB - 4)
        assert f.read() == b"\0\0\0\0far away"
        f.seek(4 * GiB + 1)
        assert f.read(65536) == bytes(65536)


def test_truncate_and_ftruncate(d: Path) -> None:
    p = d / "f"
    p.write_bytes(b"0123456789")
    os.truncate(p, 4)
    assert p.stat().st_size == 4
    assert p.read_bytes() == b"0123"
    os.truncate(p, 8)
    assert p.read_bytes() == b"0123\0\0\0\0"
    with open(p, "r+b") as f:
        os.ftruncate(f.fileno(), 2)
        assert os.fstat(f.fileno()).st_size == 2
        f.seek(0)
        assert f.read() == b"01"
        os.ftruncate(f.fileno(), 6)
        f.seek(0)
        assert f.read() == b"01\0\0\0\0"
        os.pwrite(f.fileno(), b"Z", 5)
    assert p.read_bytes() == b"01\0\0\0Z"
    os.truncate(p, 0)
    assert p.read_bytes() == b"" and p.stat().st_size == 0
    # O_TRUNC on open
    p.write_bytes(b"abc")
    with open(p, "wb"):
        pass
    assert p.stat().st_size == 0


def test_append_from_two_handles(d: Path) -> None:
    p = d / "log"
    p.write_bytes(b"start\n")
    a = os.open(p, os.O_WRONLY | os.O_APPEND)
    b = os.open(p, os.O_WRONLY | os.O_APPEND)
    try:
        for i in range(20):
            os.write(a, b"a%02d\n" % i)
            os.write(b, b"b%02d\n" % i)
    finally:
        os.close(a)
        os.close(b)
    lines = p.read_bytes().splitlines()
    assert lines[0] == b"start"
    assert lines[1:] == [x for i in range(20) for x in (b"a%02d" % i, b"b%02d" % i)]


def test_unlink_while_open(d: Path) -> None:
    p = d / "f"
    p.write_bytes(b"committed content")
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        assert not p.exists()
        assert os.listdir(d) == []
        assert os.pread(fd, 100, 0) == b"committed content"
        os.pwrite(fd, b"C", 0)
        assert os.pread(fd, 100, 0) == b"Committed content"
        assert os.fstat(fd).st_nlink == 0
    finally:
        os.close(fd)
    assert not p.exists()
    # A file unlinked before its first commit
    fd = os.open(d / "g", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"never committed")
        os.unlink(d / "g")
        assert os.pread(fd, 100, 0) == b"never committed"
    finally:
        os.close(fd)
    assert os.listdir(d) == []


# -- directories -----------------------------------------------------------------------------------
def test_mkdir_rmdir_errors(d: Path) -> None:
    os.mkdir(d / "a")
    assert stat.S_ISDIR(os.stat(d / "a").st_mode)
    assert _errno_of(os.mkdir, d / "a") == errno.EEXIST
    (d / "file").write_text("x")
    assert _errno_of(os.mkdir, d / "file") == errno.EEXIST
    assert _errno_of(os.mkdir, d / "file" / "sub") == errno.ENOTDIR
    assert _errno_of(os.rmdir, d / "file") == errno.ENOTDIR
    assert _errno_of(os.unlink, d / "a") in (errno.EISDIR, errno.EPERM)
    (d / "a" / "inner").write_text("x")
    assert _errno_of(os.rmdir, d / "a") == errno.ENOTEMPTY
    assert _errno_of(os.rmdir, d / "missing") == errno.ENOENT
    os.unlink(d / "a" / "inner")
    os.rmdir(d / "a")
    assert sorted(os.listdir(d)) == ["file"]


def test_rename(d: Path) -> None:
    (d / "a").write_text("A")
    (d / "b").write_text("B")
    os.rename(d / "a", d / "b")  # over an existing file
    assert (d / "b").read_text() == "A" and not (d / "a").exists()
    os.mkdir(d / "src")
    os.mkdir(d / "empty")
    os.rename(d / "src", d / "empty")  # over an empty directory
    assert (d / "empty").is_dir() and not (d / "src").exists()
    os.mkdir(d / "full")
    (d / "full" / "x").write_text("x")
    os.mkdir(d / "other")
    assert _errno_of(os.rename, d / "other", d / "full") in (errno.ENOTEMPTY, errno.EEXIST)
    assert _errno_of(os.rename, d / "other", d / "b") == errno.ENOTDIR
    assert _errno_of(os.rename, d / "b", d / "other") == errno.EISDIR
    os.rename(d / "b", d / "full" / "moved")  # across directories
    assert (d / "full" / "moved").read_text() == "A"
    os.rename(d / "full", d / "other" / "full")  # a directory with content, across directories
    assert (d / "other" / "full" / "x").read_text() == "x"
    assert _errno_of(os.rename, d / "other", d / "other" / "full" / "into") == errno.EINVAL
    assert sorted(os.listdir(d)) == ["empty", "other"]


_RENAME_NOREPLACE, _RENAME_EXCHANGE, _AT_FDCWD = 1, 2, -100


def _renameat2(old: Path, new: Path, flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(_AT_FDCWD, os.fsencode(old), _AT_FDCWD, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(old))


def test_rename_noreplace_and_exchange(d: Path) -> None:
    (d / "a").write_text("A")
    (d / "b").write_text("B")
    assert _errno_of(_renameat2, d / "a", d / "b", _RENAME_NOREPLACE) == errno.EEXIST
    assert (d / "a").read_text() == "A" and (d / "b").read_text() == "B"
    _renameat2(d / "a", d / "c", _RENAME_NOREPLACE)
    assert (d / "c").read_text() == "A" and not (d / "a").exists()
    _renameat2(d / "b", d / "c", _RENAME_EXCHANGE)
    assert (d / "c").read_text() == "B" and (d / "b").read_text() == "A"
    os.mkdir(d / "dir")
    (d / "dir" / "inside").write_text("i")
    _renameat2(d / "dir", d / "b", _RENAME_EXCHANGE)  # a directory and a file swap places
    assert (d / "dir").read_text() == "A"
    assert (d / "b" / "inside").read_text() == "i"
    assert _errno_of(_renameat2, d / "c", d / "nonexistent", _RENAME_EXCHANGE) == errno.ENOENT


def test_symlink_readlink(d: Path) -> None:
    (d / "target").write_text("T")
    os.symlink("target", d / "link")
    assert os.readlink(d / "link") == "target"
    assert (d / "link").read_text() == "T"
    assert stat.S_ISLNK(os.lstat(d / "link").st_mode)
    assert os.lstat(d / "link").st_size == len("target")
    os.symlink("/nowhere/at/all", d / "dangling")
    assert os.readlink(d / "dangling") == "/nowhere/at/all"
    assert not (d / "dangling").exists()
    assert _errno_of(os.readlink, d / "target") == errno.EINVAL
    assert _errno_of(os.symlink, "x", d / "link") == errno.EEXIST


def test_hard_links(d: Path) -> None:
    (d / "a").write_bytes(b"shared")
    os.link(d / "a", d / "b")
    os.mkdir(d / "sub")
    os.link(d / "a", d / "sub" / "c")
    assert os.stat(d / "a").st_nlink == 3
    assert os.stat(d / "a").st_ino == os.stat(d / "sub" / "c").st_ino
    with open(d / "b", "r+b") as f:
        f.write(b"SH")
    assert (d / "a").read_bytes() == b"SHared" == (d / "sub" / "c").read_bytes()
    os.unlink(d / "a")
    assert os.stat(d / "b").st_nlink == 2
    assert (d / "b").read_bytes() == b"SHared"
    assert _errno_of(os.link, d / "sub", d / "dirlink") == errno.EPERM
    assert _errno_of(os.link, d / "b", d / "sub" / "c") == errno.EEXIST


# -- what pjdfstest checks (its tests named in each docstring) ----------------------------------------
_COARSE = 5  # CLOCK_REALTIME_COARSE: the clock of commit times and of the kernel's file times


def _after(t_ns: int) -> None:
    """Wait until the file-time clock has passed `t_ns`, so that a change made next gets a later time.

    Waits for that condition, not for a duration: it holds however loaded the machine is.
    """
    while time.clock_gettime_ns(_COARSE) <= t_ns:
        time.sleep(0.001)


def _nobody(d: Path, statement: str) -> int:
    """The errno of Python `statement` (one line, `os` imported) run as nobody in `d`; 0 if it succeeds.

    It runs in `d` with relative paths: the mount point's parents are private to root.
    """
    code = f"import os\ntry:\n    {statement}\nexcept OSError as e:\n    print(e.errno)\nelse:\n    print(0)\n"
    out = subprocess.run([*NOBODY, sys.executable, "-c", code], cwd=d, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_directory_link_counts(d: Path) -> None:
    """pjdfstest rename/24, mkdir, rmdir: a directory has 2 + its subdirectories links, as on ext4."""
    os.mkdir(d / "src")
    os.mkdir(d / "dst")
    os.mkdir(d / "src" / "sub")
    (d / "src" / "file").write_text("files do not count")
    os.symlink("sub", d / "src" / "link")
    assert [os.lstat(d / n).st_nlink for n in ("src", "dst", "src/sub")] == [3, 2, 2]
    assert os.lstat(d).st_nlink == 4
    assert os.lstat(d / "src" / "sub" / "..").st_ino == os.lstat(d / "src").st_ino
    os.rename(d / "src" / "sub", d / "dst" / "moved")  # rename/24: the parents' counts follow
    assert [os.lstat(d / n).st_nlink for n in ("src", "dst")] == [2, 3]
    assert os.lstat(d / "dst" / "moved" / "..").st_ino == os.lstat(d / "dst").st_ino
    os.mkdir(d / "dst" / "moved" / "inner")
    assert os.lstat(d / "dst" / "moved").st_nlink == 3
    os.mkdir(d / "src" / "empty")
    os.rename(d / "dst" / "moved", d / "src" / "empty")  # over an empty directory elsewhere
    assert [os.lstat(d / n).st_nlink for n in ("src", "dst", "src/empty")] == [3, 2, 3]
    (d / "dst" / "f").write_text("f")
    _renameat2(d / "src" / "empty", d / "dst" / "f", _RENAME_EXCHANGE)  # a directory and a file swap
    assert [os.lstat(d / n).st_nlink for n in ("src", "dst")] == [2, 3]
    os.rmdir(d / "dst" / "f" / "inner")
    os.rmdir(d / "dst" / "f")
    assert [os.lstat(d / n).st_nlink for n in ("src", "dst")] == [2, 2]
    assert os.lstat(d).st_nlink == 4
    out = subprocess.run(["find", str(d), "-type", "f"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and sorted(out.stdout.split()) == [str(d / "src" / "empty"), str(d / "src" / "file")]


def test_directory_link_counts_in_history(shared: Mount, d: Path) -> None:
    """History views show a directory's count as of their commit; synthetic directories 2 + theirs."""
    mnt = shared.path
    os.mkdir(d / "a")
    os.mkdir(d / "a" / "one")
    (d / "a" / "f").write_text("f")
    name = f"links-{d.name}"
    os.mkdir(mnt / ".snapshots" / name)
    then = os.stat(d / "a").st_mtime_ns  # the mkdir's commit time
    _after(then + 10_000_000)
    os.mkdir(d / "a" / "two")
    os.mkdir(d / "a" / "three")
    assert os.stat(d / "a").st_nlink == 5
    assert os.stat(d / f"a@{name}").st_nlink == 3
    assert os.stat(mnt / ".snapshots" / name / d.name / "a").st_nlink == 3
    local = datetime.fromtimestamp((then + 5_000_000) / 1e9).isoformat()  # after the first mkdir, before the others
    assert os.stat(d / f"a@{local}").st_nlink == 3
    assert sorted(os.listdir(d / f"a@{local}")) == ["f", "one"]
    assert os.stat(d / "a" / "f@").st_nlink == 2
    snapshots = mnt / ".snapshots"
    assert os.stat(snapshots).st_nlink == 2 + len(os.listdir(snapshots))
    os.rmdir(snapshots / name)
    assert os.stat(snapshots).st_nlink == 2 + len(os.listdir(snapshots))


def _changes_times(
    change: Callable[..., object], args: tuple[object, ...], entry: Path, *dirs: Path, now: Path | None = None,
) -> None:
    """Assert that `change(*args)` gives `entry` (named `now` afterwards) a later ctime and `dirs` a later
    mtime and ctime."""
    before = {q: os.lstat(q) for q in (entry, *dirs)}
    _after(max(max(st.st_ctime_ns, st.st_mtime_ns) for st in before.values()))
    change(*args)
    assert os.lstat(now or entry).st_ctime_ns > before[entry].st_ctime_ns, (change, args)
    for q in dirs:
        st = os.lstat(q)
        assert st.st_mtime_ns > before[q].st_mtime_ns and st.st_ctime_ns > before[q].st_ctime_ns, (change, args, q)


def test_successful_changes_update_ctime_and_the_parents_times(d: Path) -> None:
    """pjdfstest link/00, unlink/00, rename/00, mkdir/00, rmdir/00: the entry's ctime, its directories'
    mtime and ctime; for regular files (whose times the kernel keeps) and FIFOs (whose times we keep)."""
    sub = d / "sub"
    os.mkdir(sub)
    for p in (d / "file", d / "fifo"):
        if p.name == "file":
            p.write_text("x")
        else:
            os.mkfifo(p)
        _changes_times(os.link, (p, sub / "link"), p, sub)
        _changes_times(os.unlink, (sub / "link",), p, sub)
        _changes_times(os.rename, (p, sub / "moved"), p, d, sub, now=sub / "moved")
        _changes_times(os.rename, (sub / "moved", p), sub / "moved", d, sub, now=p)
        _changes_times(os.chmod, (p, 0o600), p)
        _changes_times(os.chown, (p, 1, 1), p)
        os.unlink(p)
    _changes_times(os.mkdir, (sub / "new",), sub, sub)
    _changes_times(os.rmdir, (sub / "new",), sub, sub)


def test_failed_changes_leave_times_alone(d: Path) -> None:
    """pjdfstest link/00, unlink/00, rename/00: a change refused with EACCES updates no ctime."""
    os.chmod(d, 0o755)
    (d / "f").write_text("x")
    os.mkfifo(d / "fifo")
    for n in ("f", "fifo"):
        os.chown(d / n, 65534, 65534)
    before = {n: os.lstat(d / n).st_ctime_ns for n in (".", "f", "fifo")}
    _after(max(before.values()))
    for n in ("f", "fifo"):
        assert _nobody(d, f"os.link('{n}', '{n}2')") == errno.EACCES  # (nobody owns them: protected_hardlinks)
        assert _nobody(d, f"os.unlink('{n}')") == errno.EACCES
        assert _nobody(d, f"os.rename('{n}', '{n}3')") == errno.EACCES
    assert {n: os.lstat(d / n).st_ctime_ns for n in before} == before


def test_sticky_directory(d: Path) -> None:
    """pjdfstest unlink/11, rename/09, rename/10, rmdir/11: in a sticky directory only the owner of an
    entry, or of the directory, removes or renames it, even when everyone may write the directory."""
    os.chmod(d, 0o1777)
    (d / "roots").write_text("r")
    os.chmod(d / "roots", 0o666)
    os.mkdir(d / "rootdir")
    os.chmod(d / "rootdir", 0o777)
    assert _nobody(d, "os.unlink('roots')") == errno.EPERM
    assert _nobody(d, "os.rename('roots', 'taken')") == errno.EPERM
    assert _nobody(d, "os.rmdir('rootdir')") == errno.EPERM
    assert _nobody(d, "os.rename('rootdir', 'taken')") == errno.EPERM
    assert _nobody(d, "open('own', 'w').close()") == 0
    assert _nobody(d, "os.rename('own', 'roots')") == errno.EPERM  # replacing root's file removes it
    assert _nobody(d, "os.rename('own', 'own2')") == 0
    assert _nobody(d, "os.mkdir('owndir')") == 0
    assert _nobody(d, "os.rmdir('owndir')") == 0
    assert sorted(os.listdir(d)) == ["own2", "rootdir", "roots"]
    os.unlink(d / "own2")  # the owner of the directory may
    os.chmod(d, 0o777)  # without the sticky bit, write permission on the directory is enough
    assert _nobody(d, "os.unlink('roots')") == 0
    assert _nobody(d, "os.rmdir('rootdir')") == 0
    assert os.listdir(d) == []


def test_symlink_loops_and_path_lengths(d: Path) -> None:
    """pjdfstest open/12-13, symlink/03, mkdir/03, link/03: ELOOP for a loop and for O_NOFOLLOW on a
    symlink; ENAMETOOLONG for a path or a symlink target past PATH_MAX, which just fits."""
    os.symlink("b", d / "a")
    os.symlink("a", d / "b")
    assert _errno_of(os.open, d / "a", os.O_RDONLY) == errno.ELOOP
    assert _errno_of(os.stat, d / "a") == errno.ELOOP
    assert _errno_of(os.mkdir, d / "a" / "x") == errno.ELOOP
    assert _errno_of(os.open, d / "a" / "x", os.O_WRONLY | os.O_CREAT, 0o644) == errno.ELOOP
    (d / "target").write_text("t")
    os.symlink("target", d / "link")
    assert _errno_of(os.open, d / "link", os.O_RDONLY | os.O_NOFOLLOW) == errno.ELOOP
    longest = "x/" * 2047 + "x"  # 4095 bytes: PATH_MAX with its NUL
    os.symlink(longest, d / "longest")
    assert os.readlink(d / "longest") == longest and os.lstat(d / "longest").st_size == 4095
    assert _errno_of(os.symlink, longest + "x", d / "too-long") == errno.ENAMETOOLONG
    assert _errno_of(os.stat, str(d) + "/x" * 2048) == errno.ENAMETOOLONG
    assert _errno_of(os.mkdir, str(d) + "/x" * 2048) == errno.ENAMETOOLONG


def test_fifos_devices_and_sockets(d: Path) -> None:
    """pjdfstest mkfifo/00, mknod/00, link/00, rename/00, unlink/00 for every file type: made with their
    type, mode and device number, linked, renamed and removed like files; a FIFO passes data."""
    os.mkfifo(d / "fifo", 0o640)
    os.mknod(d / "chr", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(d / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    os.mknod(d / "sock", stat.S_IFSOCK | 0o644)
    for name, check, mode in (("fifo", stat.S_ISFIFO, 0o640), ("chr", stat.S_ISCHR, 0o600),
                              ("blk", stat.S_ISBLK, 0o600), ("sock", stat.S_ISSOCK, 0o644)):
        st = os.lstat(d / name)
        assert check(st.st_mode) and stat.S_IMODE(st.st_mode) == mode and st.st_nlink == 1, name
        os.link(d / name, d / f"{name}.2")
        assert os.lstat(d / name).st_nlink == 2 and os.lstat(d / f"{name}.2").st_ino == st.st_ino
        os.rename(d / f"{name}.2", d / f"{name}.3")
        os.unlink(d / name)
        assert os.lstat(d / f"{name}.3").st_nlink == 1 and check(os.lstat(d / f"{name}.3").st_mode)
    assert os.lstat(d / "chr.3").st_rdev == os.makedev(1, 3)
    assert os.lstat(d / "blk.3").st_rdev == os.makedev(7, 0)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append((d / "fifo.3").read_bytes()))
    reader.start()
    (d / "fifo.3").write_bytes(b"through the pipe")
    reader.join(timeout=60)
    assert received == [b"through the pipe"]
    assert os.lstat(d / "fifo.3").st_size == 0


def test_write_and_chown_clear_set_id_bits(d: Path) -> None:
    """pjdfstest chmod/12, chown/00, chmod/00: writing by someone else, and chown, clear S_ISUID and
    S_ISGID; an owner outside the file's group cannot set S_ISGID."""
    os.chmod(d, 0o777)
    for mode in (0o4777, 0o2777, 0o6777):
        (d / "f").write_bytes(b"")
        os.chmod(d / "f", mode)
        assert _nobody(d, "fd = os.open('f', os.O_WRONLY); os.write(fd, b'x'); os.close(fd)") == 0
        assert stat.S_IMODE(os.stat(d / "f").st_mode) == 0o777, oct(mode)
        os.unlink(d / "f")
    (d / "g").write_bytes(b"")
    os.chmod(d / "g", 0o6755)
    os.chown(d / "g", 65534, 65534)
    st = os.stat(d / "g")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, 65534, 65534)
    os.mkdir(d / "dir")
    os.chmod(d / "dir", 0o3755)
    os.chown(d / "dir", 65534, 65534)  # a directory keeps them
    assert stat.S_IMODE(os.stat(d / "dir").st_mode) == 0o3755
    (d / "h").write_bytes(b"")
    os.chown(d / "h", 65534, 0)
    assert _nobody(d, "os.chmod('h', 0o2755)") == 0
    assert stat.S_IMODE(os.stat(d / "h").st_mode) == 0o755


_UTIME_NOW, _UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2


def _utimensat(path: Path, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    """utimensat(2) with (seconds, nanoseconds) pairs, which may be UTIME_NOW or UTIME_OMIT."""
    times = (ctypes.c_long * 4)(*atime, *mtime)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.utimensat(_AT_FDCWD, os.fsencode(path), times, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(path))


def test_utimensat(d: Path) -> None:
    """pjdfstest utimensat/00-09: UTIME_OMIT keeps a time, UTIME_NOW sets it; the owner sets any time,
    others with write permission only the current one, others without it none; ctime follows."""
    os.chmod(d, 0o755)
    p = d / "f"
    p.write_text("x")
    _utimensat(p, (1_000_000_000, 11), (1_500_000_000, 22))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_000_000_000_011, 1_500_000_000_000_000_022)
    _utimensat(p, (0, _UTIME_OMIT), (1_600_000_000, 33))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_000_000_000_011, 1_600_000_000_000_000_033)
    before = time.clock_gettime_ns(_COARSE)
    _after(max(before, st.st_ctime_ns))
    _utimensat(p, (0, _UTIME_NOW), (0, _UTIME_OMIT))
    st = os.stat(p)
    assert st.st_atime_ns > before and st.st_mtime_ns == 1_600_000_000_000_000_033 and st.st_ctime_ns > before
    os.chmod(p, 0o666)
    assert _nobody(d, "os.utime('f')") == 0  # UTIME_NOW with write permission
    assert _nobody(d, "os.utime('f', ns=(1, 1))") == errno.EPERM
    os.chmod(p, 0o644)
    assert _nobody(d, "os.utime('f')") == errno.EACCES


def test_open_and_truncate_errors_and_times(d: Path) -> None:
    """pjdfstest open/, truncate/, ftruncate/, rmdir/: EISDIR, ENOTDIR, EINVAL; O_TRUNC and truncate
    update mtime and ctime."""
    os.mkdir(d / "dir")
    (d / "f").write_text("content")
    assert _errno_of(os.open, d / "dir", os.O_WRONLY) == errno.EISDIR
    assert _errno_of(os.open, d / "dir", os.O_RDWR) == errno.EISDIR
    assert _errno_of(os.open, d / "f", os.O_RDONLY | os.O_DIRECTORY) == errno.ENOTDIR
    assert _errno_of(os.open, d / "f" / "x", os.O_RDONLY) == errno.ENOTDIR
    assert _errno_of(os.truncate, d / "dir", 0) == errno.EISDIR
    assert _errno_of(os.truncate, d / "f", -1) == errno.EINVAL
    assert _errno_of(os.truncate, d / "f", 1 << 62) in (errno.EFBIG, errno.EINVAL)  # past the store's limit
    assert (d / "f").read_text() == "content"
    assert _errno_of(os.rmdir, f"{d}/dir/.") == errno.EINVAL  # (pathlib would drop the '.')
    fd = os.open(d / "f", os.O_RDONLY)
    try:
        assert _errno_of(os.ftruncate, fd, 0) in (errno.EINVAL, errno.EBADF)
    finally:
        os.close(fd)
    for change in (lambda: os.close(os.open(d / "f", os.O_WRONLY | os.O_TRUNC)), lambda: os.truncate(d / "f", 3)):
        (d / "f").write_text("content")
        st = os.stat(d / "f")
        _after(max(st.st_mtime_ns, st.st_ctime_ns))
        change()
        after = os.stat(d / "f")
        assert after.st_mtime_ns > st.st_mtime_ns and after.st_ctime_ns > st.st_ctime_ns
    assert os.stat(d / "f").st_size == 3


def test_new_entries_modes_and_owners(d: Path) -> None:
    """pjdfstest mkdir/00, open/00, mkfifo/00, symlink: the mode is masked by the umask; the owner is the
    creator; the group the creator's, or in a set-group-ID directory the directory's (whose bit
    subdirectories inherit, as on ext4)."""
    os.chmod(d, 0o777)
    code = ("import os\nos.umask({umask})\nos.mkdir('dir{umask}', 0o345)\n"
            "os.close(os.open('file{umask}', os.O_CREAT | os.O_WRONLY, 0o345))\nos.mkfifo('fifo{umask}', 0o345)\n")
    for umask, expected in ((0o077, 0o300), (0o070, 0o305), (0o501, 0o244)):
        out = subprocess.run([sys.executable, "-c", code.format(umask=oct(umask))], cwd=d, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        for kind in ("dir", "file", "fifo"):
            assert stat.S_IMODE(os.lstat(d / f"{kind}{oct(umask)}").st_mode) == expected, (kind, oct(umask))
    assert _nobody(d, "os.mkdir('nobodys')") == 0
    assert _nobody(d, "os.symlink('x', 'nobodys-link')") == 0
    for name in ("nobodys", "nobodys-link"):
        st = os.lstat(d / name)
        assert (st.st_uid, st.st_gid) == (65534, 65534), name
    os.mkdir(d / "shared")
    os.chown(d / "shared", 0, 4321)
    os.chmod(d / "shared", 0o2777)
    assert _nobody(d, "os.mkdir('shared/sub'); open('shared/file', 'w').close(); os.mkfifo('shared/fifo')") == 0
    for name in ("sub", "file", "fifo"):
        st = os.lstat(d / "shared" / name)
        assert (st.st_uid, st.st_gid) == (65534, 4321), name
    assert os.lstat(d / "shared" / "sub").st_mode & stat.S_ISGID
    assert not os.lstat(d / "shared" / "file").st_mode & stat.S_ISGID


def test_rename_of_hard_links_and_open_replaced_files(d: Path) -> None:
    """pjdfstest rename/00, link/00: renaming one link over another of the same file changes nothing;
    a file replaced by rename loses a link, and an open handle of its last one still reads it."""
    (d / "a").write_text("A")
    os.link(d / "a", d / "b")
    os.rename(d / "a", d / "b")
    assert sorted(os.listdir(d)) == ["a", "b"] and os.stat(d / "a").st_nlink == 2
    (d / "c").write_text("C")
    fd = os.open(d / "c", os.O_RDONLY)
    try:
        os.rename(d / "a", d / "c")
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 10, 0) == b"C"
        assert os.stat(d / "b").st_nlink == 2 and (d / "c").read_text() == "A"
    finally:
        os.close(fd)


def test_posix_fallocate_extends_the_file(d: Path) -> None:
    """pjdfstest posix_fallocate/00: the file grows to cover the range, reading zeros."""
    p = d / "f"
    p.write_bytes(b"head")
    fd = os.open(p, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, 100_000)
        assert os.fstat(fd).st_size == 100_000
    finally:
        os.close(fd)
    assert p.read_bytes() == b"head" + bytes(100_000 - 4)


# -- attributes ------------------------------------------------------------------------------------
def test_chmod_chown_utimens(d: Path) -> None:
    p = d / "f"
    p.write_text("x")
    os.chmod(p, 0o640)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert stat.S_ISREG(os.stat(p).st_mode)
    os.chown(p, 1234, 5678)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    atime, mtime = 1_600_000_000_123_456_789, 1_500_000_000_987_654_321
    os.utime(p, ns=(atime, mtime))
    st = os.stat(p)
    assert (st.st_atime_ns, st.st_mtime_ns) == (atime, mtime)
    # on an open, dirty file as well
    with open(p, "r+b") as f:
        f.write(b"y")
        f.flush()
        os.utime(f.fileno(), ns=(atime + 1, mtime + 1))
        assert os.fstat(f.fileno()).st_mtime_ns == mtime + 1
    assert os.stat(p).st_mtime_ns == mtime + 1
    os.mkdir(d / "dir")
    os.chmod(d / "dir", 0o700)
    os.utime(d / "dir", ns=(atime, mtime))
    st = os.stat(d / "dir")
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_mtime_ns == mtime


def test_permissions_enforced(d: Path) -> None:
    os.chmod(d, 0o755)
    (d / "secret").write_text("s")
    os.chmod(d / "secret", 0o600)
    (d / "public").write_text("p")
    os.chmod(d / "public", 0o644)
    # The mount point's parents are private to root: run in the directory so that none is traversed.
    def as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*NOBODY, *cmd], cwd=d, capture_output=True, text=True, timeout=30)

    assert as_nobody("cat", "public").stdout == "p"
    denied = as_nobody("cat", "secret")
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert as_nobody("sh", "-c", "echo x >> public").returncode != 0
    assert as_nobody("touch", "new").returncode != 0  # directory not writable for others
    code = "import os\ntry:\n    os.open('secret', os.O_RDONLY)\nexcept OSError as e:\n    print(e.errno)\n"
    out = subprocess.run([*NOBODY, sys.executable, "-c", code], cwd=d, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == str(errno.EACCES), out.stderr
    assert (d / "public").read_text() == "p"
    assert not (d / "new").exists()


def test_statfs(shared: Mount) -> None:
    sv = os.statvfs(shared.path)
    assert sv.f_blocks > 0 and sv.f_bavail > 0 and sv.f_bfree >= sv.f_bavail
    assert sv.f_bsize > 0 and sv.f_namemax == 255
    assert sv.f_files > 0
    out = subprocess.run(["df", "-P", str(shared.path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split()[-1] == str(shared.path)


def test_xattrs(d: Path) -> None:
    p = d / "f"
    p.write_text("x")
    assert os.listxattr(p) == []
    os.setxattr(p, "user.one", b"1")
    os.setxattr(p, "user.two", b"\0binary\xff")
    assert os.getxattr(p, "user.one") == b"1"
    assert os.getxattr(p, "user.two") == b"\0binary\xff"
    assert sorted(os.listxattr(p)) == ["user.one", "user.two"]
    os.setxattr(p, "user.one", b"changed")
    assert os.getxattr(p, "user.one") == b"changed"
    assert _errno_of(os.setxattr, p, "user.one", b"x", os.XATTR_CREATE) == errno.EEXIST
    assert _errno_of(os.setxattr, p, "user.new", b"x", os.XATTR_REPLACE) == errno.ENODATA
    os.removexattr(p, "user.one")
    assert os.listxattr(p) == ["user.two"]
    assert _errno_of(os.getxattr, p, "user.one") == errno.ENODATA
    assert _errno_of(os.removexattr, p, "user.one") == errno.ENODATA
    os.mkdir(d / "dir")
    os.setxattr(d / "dir", "user.d", b"on a dir")
    assert os.getxattr(d / "dir", "user.d") == b"on a dir"


def test_fsync_fdatasync(d: Path) -> None:
    p = d / "f"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"durable")
        os.fsync(fd)
        os.write(fd, b" more")
        os.fdatasync(fd)
        assert os.pread(fd, 100, 0) == b"durable more"
    finally:
        os.close(fd)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


_LOCK_CHILD = """
import fcntl, sys
f = open(sys.argv[1], "r+b")
try:
    if sys.argv[2] == "flock":
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("blocked")
except OSError as e:
    print("error", e.errno)
else:
    print("locked")
"""


@pytest.mark.parametrize("kind", ["flock", "lockf"])
def test_locks_between_processes(d: Path, kind: str) -> None:
    p = d / "lockfile"
    p.write_bytes(b"x")
    with open(p, "r+b") as f:
        if kind == "flock":
            fcntl.flock(f, fcntl.LOCK_EX)
        else:
            fcntl.lockf(f, fcntl.LOCK_EX)
        assert _run_py(_LOCK_CHILD, str(p), kind).stdout.strip() == "blocked"
        if kind == "flock":
            fcntl.flock(f, fcntl.LOCK_UN)
        else:
            fcntl.lockf(f, fcntl.LOCK_UN)
        assert _run_py(_LOCK_CHILD, str(p), kind).stdout.strip() == "locked"


# -- names -----------------------------------------------------------------------------------------
def test_name_length_limits(d: Path) -> None:
    long = "n" * 255
    (d / long).write_text("ok")
    assert (d / long).read_text() == "ok"
    assert os.listdir(d) == [long]
    os.mkdir(d / ("D" * 255))
    os.rename(d / long, d / ("D" * 255) / ("m" * 255))
    too_long = "x" * 256
    assert _errno_of(os.open, d / too_long, os.O_RDWR | os.O_CREAT, 0o644) == errno.ENAMETOOLONG
    assert _errno_of(os.stat, d / too_long) == errno.ENAMETOOLONG
    assert _errno_of(os.mkdir, d / too_long) == errno.ENAMETOOLONG
    assert _errno_of(os.symlink, "t", d / too_long) == errno.ENAMETOOLONG
    assert _errno_of(os.rename, d / ("D" * 255), d / too_long) == errno.ENAMETOOLONG
    assert _errno_of(os.link, d / ("D" * 255) / ("m" * 255), d / too_long) == errno.ENAMETOOLONG
    # 255 bytes of UTF-8 that are fewer characters
    euro = "€" * 85  # 3 bytes each
    (d / euro).write_text("e")
    assert _errno_of(os.mkdir, d / (euro + "x")) == errno.ENAMETOOLONG


def test_non_ascii_names(d: Path) -> None:
    names = ["Grüße", "日本語のファイル", "emoji 🎉 name", "tab\tand newline\n"]
    for n in names:
        (d / n).write_text(n)
    raw = b"latin1-\xe9\xff-invalid"
    bd = os.fsencode(d)
    fd = os.open(bd + b"/" + raw, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"bytes name")
    os.close(fd)
    assert sorted(os.listdir(d)) == sorted([*names, os.fsdecode(raw)])
    assert sorted(os.listdir(bd)) == sorted([*(n.encode() for n in names), raw])
    for n in names:
        assert (d / n).read_text() == n
    with open(bd + b"/" + raw, "rb") as f:
        assert f.read() == b"bytes name"
    os.rename(bd + b"/" + raw, bd + b"/" + raw + b"\xfe")
    assert raw + b"\xfe" in os.listdir(bd)
    out = subprocess.run(["ls", "-1", "--quoting-style=literal", str(d)], capture_output=True, timeout=30)
    assert out.returncode == 0 and "Grüße".encode() in out.stdout.split(b"\n")


# -- big directories -------------------------------------------------------------------------------
def test_readdir_of_a_growing_and_shrinking_directory(d: Path) -> None:
    """A listing during concurrent adds and removes never repeats an entry nor skips a stable one."""
    stable = {f"stable{i:05d}" for i in range(1000)}
    for n in stable:
        os.mknod(d / n, stat.S_IFREG | 0o644)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        i = 0
        try:
            while not stop.is_set():
                os.mknod(d / f"churn{i:07d}", stat.S_IFREG | 0o644)
                if i >= 5:
                    os.unlink(d / f"churn{i - 5:07d}")
                i += 1
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(3):
            listing = os.listdir(d)
            assert len(listing) == len(set(listing)), "an entry was listed twice"
            assert stable <= set(listing), "an entry present throughout was skipped"
    finally:
        stop.set()
        t.join()
    assert not errors


@pytest.mark.slow
def test_100k_entries_in_one_directory(d: Path) -> None:
    n = 100_000
    names = {f"entry-{i:06d}" for i in range(n)}
    for name in names:  # mknod: one request per file, not four as open+close
        os.mknod(d / name, stat.S_IFREG | 0o644)
    listing = os.listdir(d)
    assert len(listing) == n and set(listing) == names
    out = subprocess.run(["ls", "-f", str(d)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0
    listed = [x for x in out.stdout.splitlines() if x not in (".", "..")]
    assert len(listed) == n and set(listed) == names
    # A listing while entries come and go elsewhere in the same directory.
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            os.mknod(d / f"churn{i:07d}", stat.S_IFREG | 0o644)
            if i >= 10:
                os.unlink(d / f"churn{i - 10:07d}")
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        listing = os.listdir(d)
    finally:
        stop.set()
        t.join()
    assert len(listing) == len(set(listing))
    assert names <= set(listing)


# -- durability and versions -----------------------------------------------------------------------
def test_fsynced_data_of_open_file_survives_kill9(mount: Mount) -> None:
    p = mount.path / "journal"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"fsynced line\n")
        os.fsync(fd)
        mount.kill9()
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    mount.start()
    assert p.read_bytes() == b"fsynced line\n"


def test_tree_edits_survive_kill9_before_their_batch_commits(mount: Mount) -> None:
    d = mount.path / "d"
    d.mkdir()
    for i in range(20):
        (d / f"f{i}").write_bytes(b"x")
    (d / "sub").mkdir()
    time.sleep(0.2)  # the creates' versions are committed: only the edits below are pending
    pid = mount.pid
    for i in range(10):
        os.unlink(d / f"f{i}")
    os.rmdir(d / "sub")
    (d / "new").mkdir()
    (d / "empty").touch()
    os.symlink("f10", d / "ln")
    os.link(d / "f11", d / "hard")
    os.rename(d / "f12", d / "new" / "moved")
    os.chmod(d / "f13", 0o600)
    os.utime(d / "f14", ns=(1_000_000_000, 2_000_000_000))
    os.kill(pid, signal.SIGSTOP)  # before the batch's gathering window ends
    journal = (mount.store / "catalog.db-edits").read_bytes()
    mount.kill9()
    assert len(journal) > 8, "the edits were committed already: the kill tested nothing"
    mount.start()
    assert sorted(os.listdir(d)) == sorted(["empty", "f10", "f11", "f13", "f14", "f15", "f16", "f17", "f18", "f19",
                                            "hard", "ln", "new"])
    assert os.listdir(d / "new") == ["moved"] and (d / "new" / "moved").read_bytes() == b"x"
    assert os.readlink(d / "ln") == "f10" and (d / "empty").read_bytes() == b""
    assert os.stat(d / "hard").st_ino == os.stat(d / "f11").st_ino and os.stat(d / "f11").st_nlink == 2
    assert stat.S_IMODE(os.stat(d / "f13").st_mode) == 0o600
    assert os.stat(d / "f14").st_mtime_ns == 2_000_000_000
    assert os.stat(d).st_nlink == 3


def test_open_dirty_file_gets_a_version_after_interval(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    vfs("init", str(store))
    m = Mount(store, mnt, "--version-interval", "2")
    m.start()
    try:
        with open(mnt / "open.log", "wb") as f:
            f.write(b"dirty and open")
            f.flush()
            deadline = time.monotonic() + 10  # interval 2 s; the kernel alone may hold it 30 s
            while _versions(store, b"open.log") == 0 and time.monotonic() < deadline:
                time.sleep(0.25)
            assert _versions(store, b"open.log") >= 1
            f.write(b", still")
            f.flush()
    finally:
        m.cleanup()


# -- the mount command -----------------------------------------------------------------------------
def test_mount_errors(tmp_path: Path) -> None:
    store = tmp_path / "store"
    vfs("init", str(store))
    missing = vfs("mount", str(store), str(tmp_path / "nope"), check=False)
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").touch()
    nonempty = vfs("mount", str(store), str(full), check=False)
    assert nonempty.returncode != 0
    assert "not empty" in nonempty.stderr and "Traceback" not in nonempty.stderr
    nostore = vfs("mount", str(tmp_path / "nostore"), str(tmp_path / "x"), check=False)
    assert nostore.returncode != 0 and "Traceback" not in nostore.stderr
    assert not is_mounted(full)


def test_second_mount_refused_and_stale_lock_taken_over(mount: Mount, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (mount.path / "f").write_text("one")
    second = vfs("mount", str(mount.store), str(other), check=False)
    assert second.returncode != 0
    assert "Traceback" not in second.stderr
    assert "lock" in second.stderr.lower() or "in use" in second.stderr.lower(), second.stderr
    assert not is_mounted(other)
    assert (mount.path / "f").read_text() == "one"
    mount.kill9()
    mount.start()  # the dead daemon's lock does not stand in the way
    assert (mount.path / "f").read_text() == "one"


def test_mount_takes_over_a_dead_mount_point(mount: Mount) -> None:
    """A daemon that died leaves its mount point answering ENOTCONN; `vfs mount` detaches it."""
    (mount.path / "f").write_text("kept")
    pid = mount.pid
    os.kill(pid, signal.SIGKILL)
    while os.path.exists(f"/proc/{pid}") and not _is_zombie(pid):
        time.sleep(0.05)
    assert _errno_of(os.listdir, mount.path) in (errno.ENOTCONN, errno.ECONNABORTED)
    mount.start()
    assert (mount.path / "f").read_text() == "kept"


def test_damaged_pack_gives_eio_and_mount_survives(mount: Mount) -> None:
    p = mount.path / "f"
    p.write_bytes(os.urandom(200_000))
    mount.stop()
    for pack in (mount.store / "packs").rglob("*"):
        if pack.is_file() and pack.stat().st_size > 100_000:
            with open(pack, "r+b") as f:
                f.seek(pack.stat().st_size // 2)
                f.write(b"\xde\xad\xbe\xef" * 16)
    mount.start()
    assert _errno_of(p.read_bytes) == errno.EIO
    (mount.path / "g").write_text("still alive")
    assert (mount.path / "g").read_text() == "still alive"
