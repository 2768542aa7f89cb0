"""A store is its owner's alone: modes after init, clone and mount, a loose store tightened, and
another user (nobody) refused, while files created inside the mount keep the modes their creator asked for."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Volume, run
from tests.fuse.conftest import Mount, new_mount
from vfs.repository import Repository

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def not_private(root: Path) -> list[str]:
    """Every path under `root` (itself included) that is not a 0700 directory or a 0600 file."""
    out = []
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
        if stat.S_IMODE(st.st_mode) != want:
            out.append(f"{path.relative_to(root.parent)} {stat.S_IMODE(st.st_mode):o}")
    return out


def errnos_as_nobody(cwd: Path, paths: list[str]) -> dict[str, int]:
    """The errno of opening each of `paths` (relative to `cwd`) for reading as user nobody (0: it opened).

    The process enters `cwd` as root: the test's temporary directories above it are private to root, so
    `cwd` must be searchable by others, and then only the store's own modes stand between nobody and the files.
    """
    code = ("import json, os, sys\nout = {}\nfor p in sys.argv[1:]:\n    try:\n"
            "        os.close(os.open(p, os.O_RDONLY))\n        out[p] = 0\n    except OSError as e:\n"
            "        out[p] = e.errno\nprint(json.dumps(out))\n")
    done = subprocess.run([*NOBODY, sys.executable, "-c", code, *paths], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    return result


def test_init_makes_every_path_private_also_through_the_library(tmp_path: Path) -> None:
    store = tmp_path / "store"
    run("init", store)
    assert not_private(store) == []
    run("snapshot", "create", "--store", store)
    assert not_private(store) == []
    # The library (the Python API) must not depend on its caller's umask.
    old = os.umask(0o022)
    try:
        Volume(store).write("dir/secret.txt", os.urandom(300_000))
        lib = tmp_path / "made" / "by" / "library"
        Repository.init(lib).close()
    finally:
        os.umask(old)
    assert not_private(store) == []
    assert not_private(lib) == [] and not_private(tmp_path / "made") == []


def test_clone_makes_every_path_private(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    url = f"file://{bucket}"
    store = tmp_path / "store"
    run("init", store, "--remote", url)
    Volume(store).write("secret.txt", os.urandom(300_000))
    run("sync", "--wait", "--store", store)
    assert not_private(store) == []  # with the sync state (checkpoint, markers) in it
    copy = tmp_path / "new" / "copy"
    run("clone", url, copy)
    assert not_private(copy) == [] and not_private(tmp_path / "new") == []
    assert run("cat", "--store", copy, "secret.txt").stdout == run("cat", "--store", store, "secret.txt").stdout


def test_default_store_and_its_parents_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    env = {k: v for k, v in os.environ.items() if k != "VFS_HOME"} | {"HOME": str(home)}
    cmd = [sys.executable, "-m", "vfs.cli.main", "init"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not_private(home / ".local") == []
    os.chmod(home / ".local" / "share" / "vfs", 0o755)  # made loose by hand, or by an older vfs
    done = subprocess.run([*cmd[:-1], "snapshot", "create"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not_private(home / ".local") == []
    assert "private" in done.stderr


@pytest.mark.fuse
def test_mount_tightens_a_loose_store_says_so_and_leaves_modes_in_the_mount_alone(tmp_path: Path) -> None:
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    mnt.mkdir()
    run("init", store)
    Volume(store).write("a.txt", b"a" * 100_000)
    subprocess.run(["chmod", "-R", "go+rX", str(store)], check=True)
    assert not_private(store) != []
    m = Mount(store, mnt)
    try:
        m.start()
        assert not_private(store) == []
        log = (store / "vfs.log").read_text()
        assert sum("other users" in line for line in log.splitlines()) == 1, log
        # The daemon's umask (077) is not the creator's: the kernel passes the creator's own.
        old = os.umask(0o022)
        try:
            (mnt / "made.txt").write_bytes(b"x")
            os.mkdir(mnt / "made.d")
        finally:
            os.umask(old)
        assert stat.S_IMODE(os.stat(mnt / "made.txt").st_mode) == 0o644
        assert stat.S_IMODE(os.stat(mnt / "made.d").st_mode) == 0o755
        assert not_private(store) == []  # staging files, spares, the control socket, the log
        m.stop()
        assert not_private(store) == []
    finally:
        m.cleanup()


@pytest.mark.fuse
def test_another_user_cannot_read_the_store_of_a_mount(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    os.chmod(base, 0o711)
    with new_mount(base) as m:
        secret = os.urandom(50_000)
        (m.path / "secret.txt").write_bytes(secret)
        os.chmod(m.path / "secret.txt", 0o600)
        run("snapshot", "create", "--mount", m.path)
        store = m.store
        packs = [str(p.relative_to(base)) for p in (store / "packs").rglob("*.pack")]
        files = ["catalog.db", "catalog.db-wal", "catalog.db-shm", "lock", "vfs.log"]
        paths = [f"store/{f}" for f in files if (store / f).exists()] + packs
        assert "store/catalog.db-wal" in paths and packs
        assert errnos_as_nobody(base, paths) == dict.fromkeys(paths, errno.EACCES)
