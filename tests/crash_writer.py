"""Helper process for the crash-safety test in tests/test_repository.py (not a test itself).

Usage: python tests/crash_writer.py STORE SEED INO[,INO...]

Opens the store and commits versions of the given files forever, alternating commit_bytes and
commit_file, with contents of varied size (empty, tiny, several chunks, several packs) that partly
repeat earlier contents (so dedup paths run too). After each commit returns it prints
"ino vno sha256-hex" and flushes: a printed line is a promise that the version is committed.
The test kills this process with SIGKILL at random moments.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path

from vfs.repository import Repository
from vfs.types import InodeNo

_WORDS = b"the quick brown fox jumps over a lazy dog while versioned chunks travel in packs".split()


def _content(rnd: random.Random, previous: list[bytes]) -> bytes:
    size = rnd.choice([0, rnd.randrange(1, 5000), rnd.randrange(5000, 200_000), rnd.randrange(200_000, 3 << 20)])
    if previous and rnd.random() < 0.3:
        # An edit of an earlier content: most chunks are known already.
        base = rnd.choice(previous)
        cut = rnd.randrange(len(base) + 1)
        return base[:cut] + os.urandom(rnd.randrange(1, 1000)) + base[cut:]
    if rnd.random() < 0.5:
        return os.urandom(size)
    text = b" ".join(rnd.choices(_WORDS, k=size // 4 + 1))
    return text[:size]


def main() -> None:
    store, seed, inos = Path(sys.argv[1]), int(sys.argv[2]), [InodeNo(int(x)) for x in sys.argv[3].split(",")]
    rnd = random.Random(seed)
    os.umask(0o077)  # as the CLI and the daemon: the staging file it writes itself stays private
    repo = Repository.open(store)
    staging = repo.staging / f"crash-writer-{os.getpid()}"
    previous: list[bytes] = []
    print("open", flush=True)
    while True:
        ino = rnd.choice(inos)
        data = _content(rnd, previous)
        if rnd.random() < 0.5:
            v = repo.commit_bytes(ino, data)
        else:
            staging.write_bytes(data)
            v = repo.commit_file(ino, staging)
        print(ino, v.vno, hashlib.sha256(data).hexdigest(), flush=True)
        previous = [*previous[-3:], data]


if __name__ == "__main__":
    main()
