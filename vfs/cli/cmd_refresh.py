"""vfs refresh [MOUNTPOINT]: have a follower mount look for the remote volume's newest state now.

It returns once the refresh is done: what the mount shows then is the newest state the remote had
(exit 0), or the refresh failed and the mount keeps its state (the message says why, exit 5).
Without MOUNTPOINT, the follower mount holding the current directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vfs.cli.common import find_mount, store_of_cwd
from vfs.cli.output import emit
from vfs.control.client import call
from vfs.errors import UsageError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("refresh", help="refresh a follower mount now")
    p.add_argument("mountpoint", nargs="?", type=Path, help="the follower mount (default: the one holding the"
                                                              " current directory)")
    p.add_argument("--json", action="store_true", help="print what the refresh did as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.mountpoint is not None:
        store = find_mount(args.mountpoint)
    else:
        found = store_of_cwd()
        if found is None:
            raise UsageError("give the follower's mount point (the current directory is in no vfs mount)")
        store = found
    answer = call(store, {"op": "refresh"}, timeout=600)
    emit(args, answer, lambda a: (f"refreshed to checkpoint {a['seq']} (epoch {a['epoch']}), written by {a['writer']}"
                                  if a.get("changed") else f"up to date: checkpoint {a.get('seq')}"))
    return 0
