"""Local-disk helpers shared by the layers (a leaf: imports nothing of vfs)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path | str, *, directory: bool = False) -> None:
    """fsync a file or, with `directory`, a directory (which makes its entries durable)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
