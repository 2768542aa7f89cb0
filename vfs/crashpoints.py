"""Crash points: named places where the test suite has this process killed, as a crash would kill it.

With `VFS_CRASH_AT=NAME` in its environment (or `NAME#N`: the Nth time it gets there), a process
SIGKILLs itself when it reaches crash point NAME (`reach(NAME)`). Only tests set it: they start a
mount daemon with it and check that nothing is lost (tests/maintenance/test_daemon_crash.py). Unset,
as everywhere else, `reach` does nothing. A leaf: imports nothing of vfs.

The points (the daemon's maintenance requests; each is reached before the step it names):
    gc:delete-rows, gc:delete-pack, gc:repack-copy, gc:repack-sync, gc:repack-move, gc:delete-repacked
                    the steps of `vfs.maintenance.gc.collect` that change the store
    prune:apply     the plan is made, its transaction not begun
    prune:commit    inside the transaction: every row changed, nothing committed
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "VFS_CRASH_AT"

_lock = threading.Lock()
_reached: dict[str, int] = {}


def reach(name: str) -> None:
    """SIGKILL this process if `VFS_CRASH_AT` names `name` (and this is the Nth time, for `NAME#N`)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition("#")
    if point != name:
        return
    with _lock:
        _reached[name] = count = _reached.get(name, 0) + 1
    if count == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
