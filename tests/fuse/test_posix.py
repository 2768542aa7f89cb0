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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.conftest import Mount, _is_zombie, is_mounted, new_mount, vfs

pytestmark = pytest.mark.fuse

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
GiB = 1 << 30


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mount]:
    with new_mount(tmp_path_factory.mktemp("posix")) as m:
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
