"""Benchmark of history and snapshots through a real mount (a script, not a test).

Prints, for issue 4's targets, figures measured in one run:
  - snapshot creation (`mkdir .snapshots/NAME` through the kernel) on a volume of 100 files and of
    100,000 files: it should not depend on the volume's size (target < 50 ms);
  - listing the 10,000 versions of one file (`ls -l FILE@/`; target < 1 s);
  - resolving FILE@N and FILE@time, next to looking up distinct plain names in the same mount: each
    should cost about one indexed query;
  - `ls -l` of the large directory live and in .snapshots/NAME/ (the same files; target: as fast).
Volumes are built with vfs.catalog.bulk.bulk_create_files (one transaction), then mounted with `vfs mount`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from vfs.catalog.bulk import bulk_create_files
from vfs.repository import Repository
from vfs.types import ROOT_INO

VFS = [sys.executable, "-m", "vfs.cli.main"]


@contextmanager
def mounted(store: Path, mnt: Path) -> Iterator[Path]:
    mnt.mkdir(exist_ok=True)
    subprocess.run([*VFS, "mount", str(store), str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run([*VFS, "umount", str(mnt)], check=False)


def build(store: Path, files: int, versions: int = 1) -> None:
    """A store whose root holds `files` small files, each with `versions` versions."""
    with Repository.init(store) as repo:
        known = repo.catalog.has_chunk
        contents = [repo.chunks.ingest_bytes(f"content {i}\n".encode(), known) for i in range(versions)]
        batch = 10_000
        for start in range(0, files, batch):
            names = [(f"f{i:06d}".encode(), contents) for i in range(start, min(files, start + batch))]
            bulk_create_files(repo.catalog, ROOT_INO, names, mode=0o100644, uid=os.getuid(), gid=os.getgid())


def snapshot_ms(mnt: Path, rounds: int) -> float:
    times = []
    for i in range(rounds):
        t = time.perf_counter()
        os.mkdir(mnt / ".snapshots" / f"bench-{i}")
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--large", type=int, default=100_000, help="files in the large volume (default 100000)")
    p.add_argument("--versions", type=int, default=10_000, help="versions of the one file (default 10000)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="vfs-bench-history-") as tmp:
        root = Path(tmp)
        for label, n in (("small", 100), ("large", args.large)):
            t = time.perf_counter()
            build(root / f"{label}-store", n)
            print(f"built a volume of {n} files in {time.perf_counter() - t:.1f} s", file=sys.stderr)
            with mounted(root / f"{label}-store", root / f"{label}-mnt") as mnt:
                out[f"snapshot_ms_{n}_files"] = snapshot_ms(mnt, args.rounds)

        build(root / "versions-store", 1, versions=args.versions)
        with mounted(root / "versions-store", root / "versions-mnt") as mnt:
            f = mnt / "f000000"
            t = time.perf_counter()
            listing = subprocess.run(["ls", "-l", f"{f}@/"], capture_output=True, text=True, check=True).stdout
            out["list_versions_s"] = time.perf_counter() - t
            out["versions_listed"] = len(listing.splitlines()) - 1
            picks = [random.randint(1, args.versions) for _ in range(2000)]
            t = time.perf_counter()
            for n in picks:
                os.stat(f"{f}@{n}")
            out["resolve_at_n_per_s"] = len(picks) / (time.perf_counter() - t)
            # Distinct names (microseconds apart), or the kernel would answer from its cache.
            base = datetime.now().replace(microsecond=0)
            t = time.perf_counter()
            for i in range(2000):
                os.stat(f"{f}@{(base - timedelta(microseconds=i + 1)).isoformat()}")
            out["resolve_at_time_per_s"] = 2000 / (time.perf_counter() - t)

        # `ls -l` of the large directory, live and as a snapshot shows it (the same files), each in a
        # fresh mount (nothing cached in the kernel).
        for label, sub in (("live", ""), ("snapshot", ".snapshots/bench-0")):
            with mounted(root / "large-store", root / "large-mnt") as mnt:
                t = time.perf_counter()
                listing = subprocess.run(["ls", "-l", str(mnt / sub)], capture_output=True, text=True,
                                         check=True).stdout
                out[f"ls_l_{label}_s"] = time.perf_counter() - t
                if len(listing.splitlines()) - 1 < args.large:
                    raise RuntimeError(f"ls -l {sub or '.'} listed {len(listing.splitlines()) - 1} entries")

        # Baseline in the same run: lookups of distinct plain names (each a kernel LOOKUP too).
        with mounted(root / "large-store", root / "large-mnt") as mnt:
            (root / "large-store" / "catalog.db").read_bytes()  # warm, as the versions store is
            names = [f"f{random.randrange(args.large):06d}" for _ in range(2000)]
            t = time.perf_counter()
            for name in names:
                os.stat(mnt / name)
            out["plain_lookup_per_s"] = len(names) / (time.perf_counter() - t)

    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    small, large = out["snapshot_ms_100_files"], out[f"snapshot_ms_{args.large}_files"]
    print(f"snapshot (mkdir .snapshots/NAME), median of {args.rounds}:")
    print(f"  100 files: {small:.1f} ms   {args.large} files: {large:.1f} ms   ratio {large / small:.2f}"
          "   target < 50 ms")
    print(f"ls -l of {args.large} files: live {out['ls_l_live_s']:.2f} s   .snapshots/NAME/ "
          f"{out['ls_l_snapshot_s']:.2f} s   ratio {out['ls_l_live_s'] / out['ls_l_snapshot_s']:.2f}   target >= 1")
    print(f"ls -l FILE@/ with {out['versions_listed']:.0f} versions: {out['list_versions_s']:.3f} s   target < 1 s")
    print(f"resolve FILE@N: {out['resolve_at_n_per_s']:.0f}/s   FILE@time: {out['resolve_at_time_per_s']:.0f}/s   "
          f"plain lookups (baseline): {out['plain_lookup_per_s']:.0f}/s   "
          f"ratios {out['resolve_at_n_per_s'] / out['plain_lookup_per_s']:.2f} / "
          f"{out['resolve_at_time_per_s'] / out['plain_lookup_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
