"""The layer rules (pyproject.toml's import-linter contracts) hold, and a forbidden import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy's vfs before the installed one
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_forbidden_import_breaks_the_layer_rules(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "vfs", tmp_path / "vfs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    done = lint(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(tmp_path / "vfs" / "fs" / "diff.py", "a") as f:
        f.write("\nimport sqlite3  # noqa\n")  # SQL outside the catalog
    done = lint(tmp_path)
    assert done.returncode == 1 and "sqlite3 only in vfs.catalog BROKEN" in done.stdout, done.stdout
