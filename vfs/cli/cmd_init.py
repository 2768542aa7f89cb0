"""vfs init [STORE]: create an empty store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vfs.repository import Repository


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("init", help="create a new, empty store")
    p.add_argument("store", nargs="?", type=Path,
                   help="store directory (default: $VFS_HOME or ~/.local/share/vfs/default)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.cli.main import default_store

    store = args.store or default_store()
    Repository.init(store).close()
    print(f"initialized empty store at {store}")
    return 0
