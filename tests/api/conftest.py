"""Fixtures of the Python API's tests: fresh stores, and running code as a user who is not root.

No test here mounts anything: the API works on a store directory, without FUSE.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from vfs.repository import Repository

NOBODY_UID = NOBODY_GID = 65534
NOBODY = ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_GID}", "--clear-groups"]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A new, empty store (closed: the API opens it)."""
    path = tmp_path / "store"
    Repository.init(path).close()
    return path


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory that user nobody owns (pytest's own are root's, 0700: nobody could not enter them)."""
    path = Path(tempfile.mkdtemp(prefix="vfs-api-nobody-"))
    os.chown(path, NOBODY_UID, NOBODY_GID)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run_as_nobody(code: str, cwd: Path, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run Python `code` as user nobody (no capabilities, no groups) in `cwd`; fail the test, showing its
    output, unless it exits 0."""
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root, "HOME": str(cwd), **(env or {})}
    done = subprocess.run([*NOBODY, sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)
    if done.returncode != 0:
        pytest.fail(f"as nobody, exit {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done
