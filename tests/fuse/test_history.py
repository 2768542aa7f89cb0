"""Hidden history paths through a real mount: PATH@N, PATH@time, PATH@NAME, PATH@/, /.snapshots."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import time
from datetime import datetime
from pathlib import Path

import blake3
import pytest

from tests.fuse.conftest import NOBODY, VFS, Mount, vfs

pytestmark = pytest.mark.fuse
COARSE_CLOCK = 5  # CLOCK_REALTIME_COARSE: the clock of commit times


def save(path: Path, text: str) -> None:
    """Write and close: each close of a modified file records a version."""
    path.write_text(text)


def wait_committed(path: Path, version: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if int(os.getxattr(path, "user.vfs.version")) >= version:
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached version {version}")


def errno_of(fn: object, *args: object) -> int:
    try:
        fn(*args)  # type: ignore[operator]
    except OSError as e:
        return e.errno or 0
    raise AssertionError("no error")


def test_versions_by_number_and_listing(mnt: Path) -> None:
    f = mnt / "notes.txt"
    for i in range(1, 4):
        save(f, f"state {i}\n" * i)
        wait_committed(f, i)
    assert [(mnt / f"notes.txt@{i}").read_text() for i in (1, 2, 3)] == [f"state {i}\n" * i for i in (1, 2, 3)]
    listing = sorted(os.listdir(mnt / "notes.txt@"), key=int)
    assert listing == ["1", "2", "3"]
    assert [(mnt / "notes.txt@" / n).stat().st_size for n in listing] == [len(f"state {i}\n" * i) for i in (1, 2, 3)]
    # Hidden names are never listed.
    assert sorted(os.listdir(mnt)) == ["notes.txt"]
    for bad in ("0", "4", "99999", "abc", "2026-13-45", "01", "-x"):
        assert errno_of(os.stat, mnt / f"notes.txt@{bad}") == errno.ENOENT, bad


def test_version_at_a_time_and_relative(mnt: Path) -> None:
    f = mnt / "a.txt"
    save(f, "first")
    wait_committed(f, 1)
    time.sleep(1.1)
    between = datetime.now().replace(microsecond=0).isoformat()
    time.sleep(1.1)
    save(f, "second")
    wait_committed(f, 2)
    assert (mnt / f"a.txt@{between}").read_text() == "first"
    assert (mnt / "a.txt@-1s").read_text() in ("first", "second")
    assert errno_of(os.stat, mnt / "a.txt@-1d") == errno.ENOENT  # before the store existed
    assert (mnt / "a.txt").read_text() == "second"


def test_snapshots_by_mkdir_and_views(mnt: Path) -> None:
    (mnt / "d").mkdir()
    (mnt / "d" / "keep.txt").write_text("keep")
    (mnt / "d" / "gone.txt").write_text("gone")
    (mnt / "top.txt").write_text("before")
    os.mkdir(mnt / ".snapshots" / "before-change")
    (mnt / "d" / "gone.txt").unlink()
    (mnt / "top.txt").write_text("after")
    assert os.listdir(mnt / ".snapshots") == ["before-change"]
    assert ".snapshots" not in os.listdir(mnt)
    snap = mnt / ".snapshots" / "before-change"
    assert sorted(os.listdir(snap)) == ["d", "top.txt"]
    assert (snap / "top.txt").read_text() == "before"
    assert sorted(os.listdir(mnt / "d@before-change")) == ["gone.txt", "keep.txt"]
    assert (mnt / "d@before-change" / "gone.txt").read_text() == "gone"
    assert (mnt / "top.txt@before-change").read_text() == "before"
    # diff -r and cp -a work on a view.
    subprocess.run(["cp", "-a", str(snap), str(mnt / "restored")], check=True)
    assert (mnt / "restored" / "d" / "gone.txt").read_text() == "gone"
    assert subprocess.run(["diff", "-r", str(snap / "d"), str(mnt / "restored" / "d")]).returncode == 0
    os.rmdir(snap)
    assert os.listdir(mnt / ".snapshots") == []
    time.sleep(1.1)  # the kernel may cache a hidden name for a second
    assert errno_of(os.stat, mnt / "top.txt@before-change") == errno.ENOENT


def test_snapshot_includes_data_of_a_file_still_open(mnt: Path) -> None:
    with open(mnt / "log.txt", "w") as log:
        log.write("line 1\n")
        log.flush()
        os.mkdir(mnt / ".snapshots" / "while-open")
        log.write("line 2\n")
    assert (mnt / ".snapshots" / "while-open" / "log.txt").read_text() == "line 1\n"
    assert (mnt / "log.txt").read_text() == "line 1\nline 2\n"


def test_bad_snapshot_names_are_refused(mnt: Path) -> None:
    for bad in ("12", "2026-11-21", "-1h"):
        assert errno_of(os.mkdir, mnt / ".snapshots" / bad) == errno.EPERM, bad
    os.mkdir(mnt / ".snapshots" / "ok")
    assert errno_of(os.mkdir, mnt / ".snapshots" / "ok") == errno.EEXIST


def test_history_is_read_only(mnt: Path) -> None:
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_text("x")
    os.mkdir(mnt / ".snapshots" / "s")
    wait_committed(mnt / "d" / "f", 1)
    for path in (mnt / "d" / "f@1", mnt / "d@s" / "f"):
        assert errno_of(open, path, "w") == errno.EROFS
        assert errno_of(os.chmod, path, 0o600) == errno.EROFS
        assert errno_of(os.unlink, path) == errno.EROFS
        assert errno_of(os.setxattr, path, "user.x", b"1") == errno.EROFS
    assert errno_of(os.mkdir, mnt / "d@s" / "new") == errno.EROFS
    assert errno_of(os.rename, mnt / "d@s" / "f", mnt / "d@s" / "g") == errno.EROFS
    assert (mnt / "d" / "f").read_text() == "x"


def test_real_names_with_at_win(mnt: Path) -> None:
    (mnt / "user@host.txt").write_text("real")
    (mnt / "node_modules" / "@types").mkdir(parents=True)
    (mnt / "node_modules" / "@types" / "x.d.ts").write_text("types")
    save(mnt / "f", "f")
    wait_committed(mnt / "f", 1)
    # f has no version 2 (yet): f@2 resolves to nothing, so it is a free name; once real, it wins.
    (mnt / "f@2").write_text("a real file named f@2")
    save(mnt / "f", "f, again")
    wait_committed(mnt / "f", 2)
    assert (mnt / "user@host.txt").read_text() == "real"
    assert (mnt / "node_modules" / "@types" / "x.d.ts").read_text() == "types"
    assert (mnt / "f@2").read_text() == "a real file named f@2"
    assert (mnt / "f@1").read_text() == "f"
    assert sorted(os.listdir(mnt)) == ["f", "f@2", "node_modules", "user@host.txt"]
    # Names with bytes that are not UTF-8 after the '@' are no spec at all.
    raw = os.fsencode(mnt) + b"/user@caf\xe9.txt"
    with open(raw, "wb") as out:
        out.write(b"raw")
    with open(raw, "rb") as back:
        assert back.read() == b"raw"


def test_hash_and_version_attributes(mnt: Path) -> None:
    f = mnt / "h.bin"
    data = os.urandom(300_000)
    f.write_bytes(data)
    wait_committed(f, 1)
    f.write_bytes(data + b"!")
    wait_committed(f, 2)
    assert os.getxattr(f, "user.vfs.hash").decode() == blake3.blake3(data + b"!").hexdigest()
    assert os.getxattr(mnt / "h.bin@1", "user.vfs.hash").decode() == blake3.blake3(data).hexdigest()
    assert os.getxattr(mnt / "h.bin@1", "user.vfs.version") == b"1"
    assert os.getxattr(f, "user.vfs.version") == b"2"


def test_history_follows_moves_and_atomic_saves(mnt: Path) -> None:
    a = mnt / "a.txt"
    save(a, "one")
    wait_committed(a, 1)
    os.rename(a, mnt / "b.txt")
    b = mnt / "b.txt"
    for text in ("two", "three"):
        tmp = mnt / ".b.txt.tmp"
        with open(tmp, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, b)
    wait_committed(b, 3)
    assert [(mnt / f"b.txt@{i}").read_text() for i in (1, 2, 3)] == ["one", "two", "three"]


def test_deleted_file_reachable_through_time(mount: Mount) -> None:
    mnt = mount.path
    (mnt / "d").mkdir()
    (mnt / "d" / "deleted.txt").write_text("was here")
    wait_committed(mnt / "d" / "deleted.txt", 1)
    time.sleep(1.1)
    before = datetime.now().replace(microsecond=0).isoformat()
    time.sleep(1.1)
    (mnt / "d" / "deleted.txt").unlink()
    assert (mnt / "d@-1s" / "deleted.txt").read_text() == "was here"
    mount.stop()
    mount.start()
    assert not (mnt / "d" / "deleted.txt").exists()
    assert (mnt / f"d@{before}" / "deleted.txt").read_text() == "was here"
    assert (mnt / f"d/deleted.txt@{before}").read_text() == "was here"


def test_every_save_is_a_version_even_in_quick_succession(mnt: Path) -> None:
    f = mnt / "quick.txt"
    for i in range(1, 6):
        f.write_text(f"save {i}")
    wait_committed(f, 5)
    assert [(mnt / f"quick.txt@{i}").read_text() for i in range(1, 6)] == [f"save {i}" for i in range(1, 6)]


def test_old_versions_keep_the_owner_and_mode_they_had(mount: Mount) -> None:
    mnt = mount.path
    f = mnt / "config.ini"
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # as under umask 077
    os.write(fd, b"password=hunter2\n")
    os.close(fd)
    wait_committed(f, 1)
    os.mkdir(mnt / ".snapshots" / "with-secret")
    save(f, "password=\n")
    wait_committed(f, 2)
    os.chmod(f, 0o644)
    save(f, "password=\n# public\n")
    wait_committed(f, 3)

    def as_nobody(*cmd: str) -> subprocess.CompletedProcess[str]:
        # The mount point's parents are private to root: run inside it, so that none is traversed.
        return subprocess.run([*NOBODY, *cmd], cwd=mnt, capture_output=True, text=True, timeout=30)

    assert as_nobody("cat", "config.ini").stdout == "password=\n# public\n"
    assert as_nobody("cat", "config.ini@3").stdout == "password=\n# public\n"
    for old in ("config.ini@1", "config.ini@/1", "config.ini@2", "config.ini@with-secret",
                ".snapshots/with-secret/config.ini"):
        denied = as_nobody("cat", old)
        assert denied.returncode != 0 and "Permission denied" in denied.stderr, (old, denied)
        assert stat.S_IMODE(os.stat(mnt / old).st_mode) == 0o600, old
    listing = as_nobody("ls", "-ln", "config.ini@/")
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == ["-rw-------"] * 2 + ["-rw-r--r--"]
    assert mount.log_problems() == []


def test_names_that_history_resolves_cannot_be_created_or_renamed_onto(mount: Mount) -> None:
    mnt = mount.path
    for text in ("a", "b"):
        save(mnt / "f", text)
    wait_committed(mnt / "f", 2)
    save(mnt / "g", "g")
    (mnt / "d").mkdir()
    save(mnt / "d" / "x", "x")
    os.mkdir(mnt / ".snapshots" / "good")
    (mnt / "d2").mkdir()

    def sh(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, cwd=mnt, capture_output=True, text=True, timeout=30)

    # Renames reach the filesystem, which refuses them; the kernel answers EEXIST itself to creating
    # a name that exists (it looked the view up), as for any existing name on a read-only mount.
    for cmd, error in [
        (("mv", "g", "f@1"), "Read-only file system"),
        (("mv", "-T", "d2", "d@good"), "Read-only file system"),
        (("mv", "-T", "d2", "f@"), "Read-only file system"),
        (("touch", "f@1"), "Read-only file system"),
        (("cp", "g", "f@1"), "Read-only file system"),
        (("ln", "g", "f@1"), "File exists"),
        (("ln", "-s", "g", "f@1"), "File exists"),
        (("mkdir", "f@1"), "File exists"),
        (("mkdir", "d@good"), "File exists"),
    ]:
        done = sh(*cmd)
        assert done.returncode != 0 and error in done.stderr, (cmd, done)
    # Nothing changed, and the next commands work.
    assert (mnt / "f@1").read_text() == "a"
    assert os.listdir(mnt / "d@good") == ["x"]
    assert sorted(os.listdir(mnt)) == ["d", "d2", "f", "g"]
    assert (mnt / "g").read_text() == "g"
    assert [v["version"] for v in json.loads(vfs("log", "--json", str(mnt / "f")).stdout)["versions"]] == [1, 2]
    assert sh("sh", "-c", "echo c > f && mv g h@1 && ln -s f f@9 && mkdir d@1").returncode == 0
    wait_committed(mnt / "f", 3)
    assert (mnt / "f@3").read_text() == "c\n"
    assert (mnt / "h@1").read_text() == "g"
    assert sorted(os.listdir(mnt)) == ["d", "d2", "d@1", "f", "f@9", "h@1"]
    assert mount.log_problems() == []


BAD_SPECS = ["9999999999999999999", "-99999999999y", "2263-01-01", "9999-12-31T23:59:59", "0001-01-01", "²",
             "\u0661", "-\u0661h", "\udcff", "caf\udce9"]


def test_bad_specs_and_odd_names_are_enoent_or_work_never_eio(mount: Mount) -> None:
    mnt = mount.path
    save(mnt / "f", "one")
    wait_committed(mnt / "f", 1)
    for spec in BAD_SPECS:
        for path in (mnt / f"f@{spec}", mnt / "f@" / spec, mnt / f"nofile@{spec}"):
            assert errno_of(os.stat, path) == errno.ENOENT, path
    root = os.fsencode(mnt)
    # Raw bytes in names: in history paths, and snapshot names (UTF-8 text: others are refused).
    for text in ("one", "two"):
        with open(root + b"/caf\xe9.txt", "w") as out:
            out.write(text)
    os.mkdir(root + b"/dir\xff")
    with open(root + b"/dir\xff/\xfe", "w") as out:
        out.write("inside")
    os.mkdir(mnt / ".snapshots" / "s")
    wait_committed(Path(os.fsdecode(root + b"/caf\xe9.txt")), 2)
    with open(root + b"/caf\xe9.txt@1") as back:
        assert back.read() == "one"
    assert os.listdir(root + b"/caf\xe9.txt@") == [b"1", b"2"]
    assert os.listdir(root + b"/dir\xff@s") == [b"\xfe"]
    with open(root + b"/dir\xff@s/\xfe") as back:
        assert back.read() == "inside"
    bad_snapshot = root + b"/.snapshots/\xff"
    assert errno_of(os.stat, bad_snapshot) == errno.ENOENT
    assert errno_of(os.mkdir, bad_snapshot) == errno.EPERM
    assert errno_of(os.rmdir, bad_snapshot) == errno.ENOENT
    assert os.listdir(mnt / ".snapshots") == ["s"]
    assert mount.log_problems() == []


# -- reading one's own writes: history right after a close, before the batched commit -------------------
def test_history_shows_a_save_right_after_its_close(mnt: Path) -> None:
    """FILE@/, FILE@N, FILE@/N and user.vfs.* answer with the save just closed, though commits are
    batched a moment later (user.vfs.hash gave the previous version's hash in 59 of 60 tries)."""
    f = mnt / "f"
    n = 0  # versions so far: every save is one
    for i in range(1, 61):
        data = f"save {i}\n".encode()
        f.write_bytes(data)  # closed here
        n += 1
        assert os.getxattr(f, "user.vfs.hash").decode() == blake3.blake3(data).hexdigest(), i
        assert os.getxattr(f, "user.vfs.version") == str(n).encode(), i
        f.write_bytes(data + b"again")
        n += 1
        assert sorted(map(int, os.listdir(mnt / "f@"))) == list(range(1, n + 1)), i
        assert (mnt / f"f@{n}").read_bytes() == data + b"again", i
        f.write_bytes(data)  # `f@` is cached by the kernel now: this reaches its listing only
        n += 1
        assert (mnt / "f@" / str(n)).read_bytes() == data, i
        os.truncate(f, 0)  # a save by path, without an open
        n += 1
        assert max(map(int, os.listdir(mnt / "f@"))) == n, i
        assert os.getxattr(f, "user.vfs.version") == str(n).encode(), i


def _atomic_save(path: Path, text: str) -> None:
    """An editor's save: write a temporary file, rename it over the target."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_quick_atomic_saves_are_all_listed_at_once(mnt: Path) -> None:
    """After four quick atomic saves `target.txt@/` listed nothing at all for a moment: the unsettled
    saves of the target's history are those of the temporary files renamed over it."""
    target = mnt / "target.txt"
    for round_ in range(10):
        for i in range(4):
            _atomic_save(target, f"round {round_} save {i}")
        listing = sorted(map(int, os.listdir(mnt / "target.txt@")))
        assert listing == list(range(1, 4 * round_ + 5)), round_
        assert [(mnt / f"target.txt@{4 * round_ + i + 1}").read_text() for i in range(4)] == [
            f"round {round_} save {i}" for i in range(4)]


def test_a_time_taken_right_after_a_close_sees_that_save(mnt: Path) -> None:
    """A version is dated when its file was closed, not when its batch committed: FILE@T with T taken
    right after the close shows that save, and none made after T."""
    f = mnt / "f"
    dirs = mnt / "d"
    dirs.mkdir()
    for i in range(1, 21):
        f.write_text(f"save {i}")
        (dirs / "g").write_text(f"g {i}")
        t_ns = time.time_ns()
        t = datetime.fromtimestamp(t_ns // 1000 / 1e6).isoformat(timespec="microseconds")
        # Times are those of the kernel's coarse clock (a tick behind): what is done in the tick
        # that holds T may count as before T. A save after that is after T.
        while time.clock_gettime_ns(COARSE_CLOCK) <= t_ns + 2000:
            time.sleep(0.001)
        f.write_text("later")
        assert (mnt / f"f@{t}").read_text() == f"save {i}", i
        assert (mnt / f"d@{t}" / "g").read_text() == f"g {i}", i


def test_vfs_log_and_cat_right_after_a_close(mount: Mount) -> None:
    """`vfs log` and `vfs cat` (which read the catalog) see the save closed just before they ran."""
    f = mount.path / "notes.txt"
    n = 0
    for i in range(1, 6):
        data = f"note {i}".encode()
        f.write_bytes(data)
        n += 1
        log = json.loads(vfs("log", str(f), "--json").stdout)
        assert [v["version"] for v in log["versions"]] == list(range(1, n + 1)), i
        assert log["versions"][-1]["hash"] == blake3.blake3(data).hexdigest()
        f.write_bytes(data + b"!")
        n += 1
        assert subprocess.run([*VFS, "cat", f"{f}@{n}"], capture_output=True, timeout=120).stdout == data + b"!"
        f.write_bytes(data + b"?")
        n += 1
        digest = blake3.blake3(data + b"?").hexdigest()
        cat = subprocess.run([*VFS, "cat", "--mount", str(mount.path), f"blake3:{digest}"], capture_output=True,
                             timeout=120)
        assert cat.stdout == data + b"?", cat.stderr
