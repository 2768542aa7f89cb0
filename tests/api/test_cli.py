"""vfs put, get and ls from a shell: as user nobody, on a machine without /dev/fuse, without a mount.

Each command runs in a mount namespace of its own whose /dev is empty (no /dev/fuse, as in a container),
as user nobody, on a store nobody made.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import NOBODY

NO_FUSE = ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount -t tmpfs none /dev && exec "$@"', "-"]
ROOT = str(Path(__file__).resolve().parents[2])


def vfs(cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """`vfs ARGS` as nobody without /dev/fuse; its exit status must be `code` (and no traceback)."""
    done = subprocess.run([*NO_FUSE, *NOBODY, sys.executable, "-m", "vfs.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": ROOT, "HOME": str(cwd), "PATH": "/usr/bin:/bin"})
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done


@pytest.fixture
def work(nobody_dir: Path) -> Path:
    if subprocess.run([*NO_FUSE, "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a mount namespace here")
    vfs(nobody_dir, "init", "store")
    return nobody_dir


def write_as_nobody(cwd: Path, name: str, text: str) -> None:
    subprocess.run([*NOBODY, "sh", "-c", f'mkdir -p "$(dirname {name})" && printf %s "$1" > {name}', "-", text],
                   cwd=cwd, check=True)


@pytest.mark.slow
def test_put_ls_get_without_fuse_as_a_user(work: Path) -> None:
    write_as_nobody(work, "data/a.txt", "alpha")
    write_as_nobody(work, "data/sub/b.txt", "beta")
    first = json.loads(vfs(work, "put", "data", "exp", "--store", "store", "--json").stdout)
    assert sorted(first["created"]) == ["exp/", "exp/a.txt", "exp/sub/", "exp/sub/b.txt"]
    assert vfs(work, "snapshot", "create", "one", "--store", "store").returncode == 0
    again = json.loads(vfs(work, "put", "data", "exp", "--store", "store", "--json").stdout)
    assert again["stored_bytes"] == 0 and sorted(again["unchanged"]) == ["exp/a.txt", "exp/sub/b.txt"]
    write_as_nobody(work, "data/a.txt", "ALPHA!")
    text = vfs(work, "put", "data", "exp", "--store", "store").stdout
    assert "0 created, 1 updated, 1 unchanged" in text

    assert vfs(work, "ls", "exp", "--store", "store").stdout.split() == ["a.txt", "sub/"]
    long = vfs(work, "ls", "exp@one", "-l", "--store", "store").stdout.splitlines()
    assert long[0].startswith("-rw") and long[0].split()[1] == "5" and long[0].endswith("@1  a.txt")
    listed = json.loads(vfs(work, "ls", "exp", "--json", "--store", "store").stdout)
    assert [(e["name"], e["version"]) for e in listed["entries"]] == [("exp/a.txt", 2), ("exp/sub", 0)]

    vfs(work, "get", "exp/a.txt@1", "old.txt", "--store", "store")
    assert (work / "old.txt").read_text() == "alpha" and (work / "old.txt").stat().st_uid == 65534
    vfs(work, "get", "exp@one", "--store", "store")  # LOCAL defaults to the name: ./exp
    assert (work / "exp" / "a.txt").read_text() == "alpha" and (work / "exp" / "sub" / "b.txt").read_text() == "beta"


@pytest.mark.slow
def test_bad_input_is_one_line_and_its_exit_code(work: Path) -> None:
    write_as_nobody(work, "f.txt", "x")
    vfs(work, "put", "f.txt", "f.txt", "--store", "store")
    err = vfs(work, "get", "f.txt@7", "--store", "store", code=1).stderr
    assert err == "vfs: error: f.txt@7: f.txt has no version 7 (it has versions 1 to 1)\n"
    err = vfs(work, "put", "f.txt", "f.txt@1", "--store", "store", code=1).stderr
    assert err.startswith("vfs: error: f.txt@1: history is read-only")
    err = vfs(work, "ls", "--store", "nostore", code=3).stderr
    assert "vfs: error: no store at" in err and "nostore: the directory does not exist" in err
    err = vfs(work, "put", "missing.txt", "x", "--store", "store", code=1).stderr
    assert err == "vfs: error: missing.txt: no such local file or directory\n"
    err = vfs(work, "ls", "nope@yesterday", "--store", "store", code=1).stderr
    assert err.startswith("vfs: error: nope@yesterday:")
    err = vfs(work, "get", "f.txt", "/proc/forbidden/x", "--store", "store", code=1).stderr
    assert err.startswith("vfs: error: ") and err.count("\n") == 1
