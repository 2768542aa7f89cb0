"""Helpers for driving the real `vfs` command, on an unmounted store or through a mount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fuse.conftest import Mount, mount  # noqa: F401  (the kernel mount fixture)
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo

VFS = [sys.executable, "-m", "vfs.cli.main"]


def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run `vfs ARGS`; with `check`, fail the test (showing stderr) unless it exits 0."""
    done = subprocess.run([*VFS, *map(str, args)], capture_output=True, timeout=120)
    if check and done.returncode != 0:
        pytest.fail(f"vfs {' '.join(map(str, args))} exited {done.returncode}: {done.stderr.decode()}")
    return done


def out(*args: str | Path) -> str:
    return run(*args).stdout.decode()


def as_json(*args: str | Path) -> Any:
    return json.loads(out(*args, "--json"))


def fails(code: int, *args: str | Path, match: str = "") -> str:
    """Run `vfs ARGS`, expecting exit status `code` and an error message containing `match`."""
    done = run(*args, check=False)
    err = done.stderr.decode()
    assert done.returncode == code, (done.returncode, err)
    assert "Traceback" not in err
    assert match in err, err
    return err


class Volume:
    """Writes to an unmounted store directly (each call opens and closes it, as the CLI needs it free)."""

    def __init__(self, store: Path) -> None:
        self.store = store

    def _dir(self, repo: Repository, names: list[str]) -> InodeNo:
        ino = ROOT_INO
        for name in names:
            child = repo.catalog.lookup(ino, os.fsencode(name))
            ino = child if child is not None else repo.catalog.create(ino, os.fsencode(name), 0o40755, 0, 0).ino
        return ino

    def write(self, path: str, data: bytes) -> None:
        """A new version of `path` (the file and its directories are made if missing); raw bytes of a
        name as os.fsdecode gives them."""
        *dirs, name = path.split("/")
        with Repository.open(self.store) as repo:
            parent = self._dir(repo, dirs)
            ino = repo.catalog.lookup(parent, os.fsencode(name))
            if ino is None:
                ino = repo.catalog.create(parent, os.fsencode(name), 0o100644, 0, 0).ino
            repo.commit_bytes(ino, data)

    def mkdir(self, path: str) -> None:
        with Repository.open(self.store) as repo:
            self._dir(repo, path.split("/"))

    def remove(self, path: str) -> None:
        *dirs, name = path.split("/")
        with Repository.open(self.store) as repo:
            parent = self._dir(repo, dirs)
            ino = repo.catalog.lookup(parent, os.fsencode(name))
            assert ino is not None
            repo.catalog.unlink(parent, os.fsencode(name), rmdir=repo.catalog.attr(ino).is_dir)

    def check(self) -> None:
        with Repository.open(self.store) as repo:
            assert repo.catalog.check() == []


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Volume]:
    """An initialized, unmounted store; its catalog must be consistent at the end."""
    store = tmp_path / "store"
    Repository.init(store).close()
    v = Volume(store)
    yield v
    v.check()
