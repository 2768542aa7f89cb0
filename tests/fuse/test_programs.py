"""Real programs through a real mount: editors, sed, rsync, tar, cp, git, sqlite3, mv, du and df.

Each test checks the program's result on the mount, and where persistence matters unmounts and
mounts again and checks once more. Every test also fails if the daemon logged a WARNING or worse.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuse.conftest import Mount

pytestmark = pytest.mark.fuse


@pytest.fixture(autouse=True)
def daemon_log_clean(mount: Mount) -> Iterator[None]:
    """Fail the test if the daemon logged a WARNING, ERROR or traceback."""
    yield
    assert not mount.log_problems(), "daemon log:\n" + (mount.store / "vfs.log").read_text()


def run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def remount(mount: Mount) -> None:
    mount.stop()
    mount.start()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every entry under `root` (relative path) → (st_mode, content hash or symlink target or '')."""
    out: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            elif stat.S_ISREG(st.st_mode):
                what = sha256(p)
            else:
                what = ""
            out[str(p.relative_to(root))] = (st.st_mode, what)
    return out


# -- editors and in-place rewriting -------------------------------------------------------------------
def vim(path: Path, *commands: str, backupcopy: str | None = None) -> None:
    opts = [] if backupcopy is None else ["-c", f"set backupcopy={backupcopy}"]
    cmds = [arg for c in commands for arg in ("-c", c)]
    run("vim", "-u", "NONE", "-i", "NONE", "-N", "-n", "-es", *opts, *cmds, "-c", "wq", path)


@pytest.mark.parametrize("backupcopy", [None, "no", "yes"])
def test_vim_saves_three_times(mount: Mount, backupcopy: str | None) -> None:
    f = mount.path / "notes.txt"
    f.write_text("first\n")
    f.chmod(0o640)
    expected = "first\n"
    for i in range(1, 4):
        vim(f, f"normal Goline {i}", backupcopy=backupcopy)
        expected += f"line {i}\n"
        assert f.read_text() == expected
        assert stat.S_IMODE(f.stat().st_mode) == 0o640
        assert sorted(p.name for p in mount.path.iterdir()) == ["notes.txt"]  # no backup or swap left
    remount(mount)
    assert f.read_text() == expected


def test_vim_one_session_three_writes(mount: Mount, tmp_path: Path) -> None:
    """Three `:w` in one vim session; a shell copy after each shows what was on disk at that moment."""
    f = mount.path / "doc.txt"
    f.write_text("a\n")
    snaps = [tmp_path / f"snap{i}" for i in range(3)]
    cmds: list[str] = []
    for i, snap in enumerate(snaps):
        cmds.append(f'execute "normal Go{i}" | w | silent !cp {f} {snap}')  # vim takes at most 10 -c
    vim(f, *cmds, backupcopy="no")
    assert [s.read_text() for s in snaps] == ["a\n0\n", "a\n0\n1\n", "a\n0\n1\n2\n"]
    assert f.read_text() == "a\n0\n1\n2\n"


def test_sed_in_place(mount: Mount) -> None:
    f = mount.path / "conf.ini"
    f.write_text("".join(f"key{i} = old{i}\n" for i in range(1000)))
    f.chmod(0o600)
    run("sed", "-i", "s/old/new/", f)
    assert f.read_text() == "".join(f"key{i} = new{i}\n" for i in range(1000))
    run("sed", "-i", "-e", "1d", "-e", "$a last", f)
    expected = "".join(f"key{i} = new{i}\n" for i in range(1, 1000)) + "last\n"
    assert f.read_text() == expected
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert [p.name for p in mount.path.iterdir()] == ["conf.ini"]
    remount(mount)
    assert f.read_text() == expected


def test_python_atomic_write(mount: Mount) -> None:
    target = mount.path / "state.json"
    for i in range(20):
        data = (f'{{"generation": {i}}}\n' * (i * 100 + 1)).encode()
        tmp = mount.path / f".state.json.tmp{i}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        dfd = os.open(mount.path, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
        assert target.read_bytes() == data
    assert [p.name for p in mount.path.iterdir()] == ["state.json"]
    remount(mount)
    assert target.read_bytes() == data


# -- copying trees ------------------------------------------------------------------------------------
def make_source_tree(root: Path) -> None:
    """Files of assorted sizes and modes, nested directories, symlinks, a hard link and an empty file."""
    root.mkdir()
    (root / "empty").write_bytes(b"")
    (root / "small.txt").write_text("hello\n")
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (root / "zeros.bin").write_bytes(bytes(1024 * 1024))
    (root / "exec.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "exec.sh").chmod(0o755)
    (root / "secret").write_text("s\n")
    (root / "secret").chmod(0o600)
    sub = root / "a" / "b" / "c"
    sub.mkdir(parents=True)
    for i in range(50):
        (sub / f"f{i}").write_bytes(os.urandom(i * 97))
    (root / "a" / "private").mkdir(mode=0o700)
    (root / "a" / "private").chmod(0o700)
    (root / "a" / "private" / "x").write_text("x")
    (root / "link").symlink_to("a/b/c/f3")
    (root / "dangling").symlink_to("nowhere")
    os.link(root / "small.txt", root / "a" / "hardlink.txt")
    t = 1_500_000_000_123_456_789
    for i, p in enumerate(sorted(root.rglob("*"), reverse=True)):  # children before parents
        os.utime(p, ns=(t + i * 1_000_000_007, t + i * 1_000_000_007), follow_symlinks=False)


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_rsync_in_and_out(mount: Mount, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_source_tree(src)
    dst = mount.path / "copy"
    run("rsync", "-a", "--checksum", f"{src}/", f"{dst}/")
    run("diff", "-r", "--no-dereference", src, dst)
    assert file_hashes(dst) == file_hashes(src)
    assert tree(dst) == tree(src)
    # A second run finds nothing to transfer.
    out = run("rsync", "-a", "--checksum", "--itemize-changes", f"{src}/", f"{dst}/")
    assert out.strip() == ""
    remount(mount)
    back = tmp_path / "back"
    run("rsync", "-a", "--checksum", f"{dst}/", f"{back}/")
    run("diff", "-r", "--no-dereference", src, back)
    assert file_hashes(back) == file_hashes(src)
    assert tree(back) == tree(src)


def _stdlib_tree(dst: Path) -> Path:
    """A copy of the installed Python standard library (its sources and tests: a few thousand files)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = shutil.ignore_patterns("site-packages", "__pycache__", "config-*", "*.so")
    shutil.copytree(stdlib, dst, ignore=skip, symlinks=True)
    return dst


@pytest.mark.slow
def test_tar_create_and_extract(mount: Mount, tmp_path: Path) -> None:
    src = _stdlib_tree(tmp_path / "stdlib")
    n = sum(1 for _ in src.rglob("*"))
    assert n > 2000
    archive = mount.path / "stdlib.tar"
    run("tar", "-cf", archive, "-C", tmp_path, "stdlib")  # writing the archive into the mount
    run("tar", "-xpf", archive, "-C", mount.path)  # extracting it inside the mount
    extracted = mount.path / "stdlib"
    assert tree(extracted) == tree(src)
    out = tmp_path / "out"
    out.mkdir()
    run("tar", "-cf", out / "again.tar", "-C", mount.path, "stdlib")  # reading the tree from the mount
    run("tar", "-xpf", out / "again.tar", "-C", out)
    assert tree(out / "stdlib") == tree(src)
    remount(mount)
    assert tree(extracted) == tree(src)
    run("tar", "-df", archive, "-C", mount.path)  # tar's own compare: contents, modes, times


def test_cp_a_keeps_modes_and_times(mount: Mount, tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_source_tree(src)
    dst = mount.path / "copy"
    run("cp", "-a", src, dst)

    def meta(root: Path) -> dict[str, tuple[int, int, int]]:
        out = {}
        for p in [root, *sorted(root.rglob("*"))]:
            st = p.lstat()
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size  # a directory's size means nothing portable
            out[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, size)
        return out

    expected = meta(src)
    assert meta(dst) == expected
    assert (dst / "a" / "hardlink.txt").stat().st_ino == (dst / "small.txt").stat().st_ino
    assert (dst / "small.txt").stat().st_nlink == 2
    remount(mount)
    assert meta(dst) == expected
    assert file_hashes(dst) == file_hashes(src)


# -- git ------------------------------------------------------------------------------------------
def test_git_repository(mount: Mount) -> None:
    repo = mount.path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(mount.path), "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str) -> str:
        return run("git", *args, cwd=repo, env=env)

    git("init", "-q", "-b", "main")
    for i in range(30):
        (repo / "src").mkdir(exist_ok=True)
        (repo / "src" / f"m{i}.py").write_text(f"value = {i}\n" * (i + 1))
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    assert git("status", "--porcelain") == ""
    first = git("rev-parse", "HEAD").strip()

    (repo / "src" / "m3.py").write_text("changed\n")
    (repo / "src" / "m4.py").unlink()
    (repo / "new.txt").write_text("new\n")
    git("add", "-A")
    git("commit", "-q", "-m", "second")
    assert git("status", "--porcelain") == ""
    second = git("rev-parse", "HEAD").strip()

    git("checkout", "-q", first)
    assert (repo / "src" / "m3.py").read_text() == "value = 3\n" * 4
    assert (repo / "src" / "m4.py").read_text() == "value = 4\n" * 5
    assert not (repo / "new.txt").exists()
    assert git("status", "--porcelain") == ""
    git("checkout", "-q", "main")
    assert (repo / "src" / "m3.py").read_text() == "changed\n"
    assert os.access(repo / "run.sh", os.X_OK)

    git("gc", "-q", "--aggressive", "--prune=now")
    git("fsck", "--full", "--strict")
    remount(mount)
    assert git("status", "--porcelain") == ""
    assert git("rev-parse", "HEAD").strip() == second
    git("fsck", "--full", "--strict")
    assert git("log", "--format=%s") == "second\nfirst\n"


# -- sqlite3 --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sqlite_wal_transactions(mount: Mount) -> None:
    db_path = mount.path / "data.db"
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT UNIQUE, v BLOB)")
        for i in range(1000):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t(k, v) VALUES (?, ?)", (f"key{i}", os.urandom(i % 700)))
            if i % 3 == 0:
                conn.execute("UPDATE t SET v = ? WHERE id = ?", (b"u" * i, i // 2 + 1))
            if i % 10 == 9:
                conn.execute("DELETE FROM t WHERE id = ?", (i - 5,))
            conn.execute("COMMIT")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        assert count == 1000 - 100
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    out = run("sqlite3", db_path, "PRAGMA integrity_check; SELECT count(*) FROM t;")
    assert out.split() == ["ok", str(count)]
    remount(mount)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == count
    finally:
        conn.close()


# -- mv, du, df -----------------------------------------------------------------------------------
def test_mv_directory_with_children(mount: Mount) -> None:
    a = mount.path / "a"
    (a / "sub" / "deeper").mkdir(parents=True)
    for i in range(20):
        (a / "sub" / f"f{i}").write_text(str(i))
    (a / "sub" / "deeper" / "leaf").write_text("leaf")
    (mount.path / "b").mkdir()
    run("mv", a / "sub", mount.path / "b" / "moved")
    assert not (a / "sub").exists()
    moved = mount.path / "b" / "moved"
    assert sorted(p.name for p in moved.iterdir()) == sorted([f"f{i}" for i in range(20)] + ["deeper"])
    assert (moved / "deeper" / "leaf").read_text() == "leaf"
    run("mv", a, moved / "deeper" / "a2")  # into a sibling's subtree
    run("mv", mount.path / "b", mount.path / "c")
    remount(mount)
    moved = mount.path / "c" / "moved"
    assert [(moved / f"f{i}").read_text() for i in range(20)] == [str(i) for i in range(20)]
    assert (moved / "deeper" / "a2").is_dir()
    assert sorted(p.name for p in mount.path.iterdir()) == ["c"]
    # Moving a directory into its own subtree fails and changes nothing.
    done = subprocess.run(["mv", str(mount.path / "c"), str(moved / "inside")], capture_output=True)
    assert done.returncode != 0
    assert (moved / "deeper" / "leaf").read_text() == "leaf"


def test_du_and_df(mount: Mount) -> None:
    sizes = [0, 1, 511, 512, 4096, 100_000, 1_000_000]
    for i, n in enumerate(sizes):
        (mount.path / f"f{i}").write_bytes(b"x" * n)
    (mount.path / "d").mkdir()
    (mount.path / "d" / "g").write_bytes(b"y" * 5000)
    total = sum(sizes) + 5000
    apparent = int(run("du", "-s", "-b", mount.path).split()[0])
    assert total <= apparent <= total + 64 * 1024  # directories may count a little
    kib = int(run("du", "-s", "-k", mount.path).split()[0])
    assert total // 1024 <= kib <= total // 1024 + 64
    remount(mount)
    assert int(run("du", "-s", "-b", mount.path).split()[0]) == apparent

    line = run("df", "-P", "-k", mount.path).splitlines()[1].split()
    blocks, used, avail = int(line[1]), int(line[2]), int(line[3])
    assert blocks > 0 and 0 <= used <= blocks and 0 <= avail <= blocks
    assert line[5] == str(mount.path)
    iline = run("df", "-P", "-i", mount.path).splitlines()[1].split()
    inodes, iused = int(iline[1]), int(iline[2])
    assert inodes > 0 and len(sizes) + 2 <= iused <= inodes
