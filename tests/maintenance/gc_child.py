"""Helper process for the gc crash test in tests/maintenance/test_gc.py (not a test itself).

Usage: python tests/maintenance/gc_child.py STORE SEED

Opens the store, prints "ready", and runs gc, sleeping a random few milliseconds before each step
that changes the store, so the test's SIGKILL lands inside gc's critical steps rather than around them.
Prints "done" when gc finished.
"""

from __future__ import annotations

import random
import sys
import time

from vfs.maintenance import gc
from vfs.repository import Repository


def main() -> None:
    store, seed = sys.argv[1], int(sys.argv[2])
    rnd = random.Random(seed)
    with Repository.open(store) as repo:
        print("ready", flush=True)
        gc.collect(repo, step=lambda what: time.sleep(rnd.random() * 0.01))
    print("done", flush=True)


if __name__ == "__main__":
    main()
