"""Benchmark of the Python API's put and get, each against a baseline measured in the same run.

Data: a folder of FILES files totalling SIZE bytes (default 7,000 files, 300 MB; `--quick`: 700 files,
30 MB), sizes spread from a few hundred bytes to a few MiB, content half text-like (compressible), half
random. Figures:

- put: `Volume.put` of the folder into a fresh, unmounted store (the modules a first put imports are
  imported before), against the bare ingest pipeline
  (`ChunkStore.ingest` of every file into another fresh store, one pack fsync, no catalog) and against
  copying the folder into a fresh mount (`shutil.copytree`, then the daemon asked to commit: data stored).
  Targets: at least 0.7x the bare ingest, faster than the copy.
- put again: the unchanged folder, as a share of the first put's time (target under 10%), and the bytes
  it stored (target 0: nothing).
- get: `Volume.get` of the tree to a local folder, against the store's read-back rate (every file's
  content read with `Repository.iter_content`, written nowhere). Page caches are dropped before each
  (when run as root). Target: at least 0.8x.

This is a benchmark, not a test: it prints figures next to their targets and exits 0 either way.
Run it as scripts/bench-api [--quick] [--size 300M] [--files 7000] [--dir /tmp] [--no-mount] [--runs N]
[--json]. The machines are shared and noisy: `--runs N` measures N times (the same folder, fresh stores;
the copy into a mount only the first time, it takes longest) and prints each ratio's runs and median.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import vfs
from vfs.compose import init_repository, open_repository
from vfs.control.client import call

TARGET_PUT_VS_INGEST = 0.7
TARGET_PUT_VS_COPY = 1.0
TARGET_SECOND_PUT = 0.10
TARGET_GET = 0.8
VFS = [sys.executable, "-m", "vfs.cli.main"]


def log(msg: str) -> None:
    print(f"bench-api: {msg}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def drop_caches() -> bool:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def make_folder(root: Path, files: int, size: int, seed: int = 7) -> int:
    """`files` files in a few dozen directories, `size` bytes in all (log-uniform sizes); returns bytes."""
    rng = random.Random(seed)
    weights = [rng.uniform(5, 15) for _ in range(files)]  # log2 of a relative size: 32 B to 32 KiB shapes
    raw = [2**w for w in weights]
    scale = size / sum(raw)
    words = b"def class return self import data size offset chunk pack store version commit path\n".split(b" ")
    total = 0
    for i, r in enumerate(raw):
        n = max(1, int(r * scale))
        d = root / f"d{i % 40:02d}" / f"e{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        if i % 2:
            data = os.urandom(n)
        else:
            line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
            data = (line * (n // len(line) + 1))[:n]
        (d / f"f{i:05d}.dat").write_bytes(data)
        total += n
    return total


def bare_ingest(store: Path, folder: Path) -> float:
    """Seconds to ingest every file of `folder` with ChunkStore.ingest (no catalog), one fsync at the end."""
    init_repository(store).close()
    with open_repository(store) as repo:
        paths = sorted(p for p in folder.rglob("*") if p.is_file())
        drop_caches()
        start = time.perf_counter()
        for p in paths:
            repo.chunks.ingest(p, repo.catalog.has_chunk, sync=False)
        repo.chunks.sync()
        return time.perf_counter() - start


def copy_into_mount(base: Path, folder: Path) -> float | None:
    """Seconds to copy `folder` into a fresh mount and have the daemon commit it; None if no mount."""
    store, mnt = base / "mstore", base / "mnt"
    mnt.mkdir()
    subprocess.run([*VFS, "init", str(store)], check=True, capture_output=True)
    if subprocess.run([*VFS, "mount", str(store), str(mnt)], capture_output=True).returncode != 0:
        return None
    try:
        drop_caches()
        start = time.perf_counter()
        shutil.copytree(folder, mnt / "data")
        call(store, {"op": "flush"})
        return time.perf_counter() - start
    finally:
        subprocess.run([*VFS, "umount", str(mnt)], capture_output=True)


def pack_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "packs").rglob("*") if p.is_file())


def read_back(store: Path) -> float:
    """Seconds to read every file's content of the volume's tree (Repository.iter_content), nowhere written."""
    with open_repository(store, lock=False) as repo:
        versions = [v for e in repo.catalog.tree(repo.catalog.head().no) if e.hash is not None
                    and (v := repo.catalog.version_at(e.ino)) is not None]
        drop_caches()
        start = time.perf_counter()
        for v in versions:
            for _ in repo.iter_content(v):
                pass
        return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="700 files, 30 MB")
    ap.add_argument("--size", default=None, help="bytes in the folder (default 300M)")
    ap.add_argument("--files", type=int, default=None, help="files in the folder (default 7000)")
    ap.add_argument("--dir", default=None, help="where to work (default: a temporary directory)")
    ap.add_argument("--no-mount", action="store_true", help="skip the copy into a mount")
    ap.add_argument("--runs", type=int, default=1, help="measure this many times (default 1)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    size = parse_size(args.size) if args.size else (30 << 20 if args.quick else 300 << 20)
    files = args.files or (700 if args.quick else 7000)
    base = Path(tempfile.mkdtemp(prefix="bench-api-", dir=args.dir))
    try:
        folder = base / "folder"
        log(f"making {files} files, {size / 2**20:.0f} MiB")
        total = make_folder(folder, files, size)
        cached = drop_caches()
        if not cached:
            log("cannot drop page caches (not root): read figures are from the cache")
        # What the first put of a process imports (trio, the maintenance service: ~0.3 s) is no part of its rate.
        importlib.import_module("vfs.maintenance.service")
        runs = []
        for n in range(args.runs):
            work = base / f"run{n}"
            work.mkdir()
            log(f"run {n + 1} of {args.runs}")
            runs.append(run(work, folder, total, mount=not args.no_mount and n == 0))
            shutil.rmtree(work, ignore_errors=True)
        report(runs, files, total, cached, as_json=args.json)
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(base: Path, folder: Path, total: int, *, mount: bool) -> list[dict[str, Any]]:
    log("bare ingest")
    bare = bare_ingest(base / "bare", folder)
    log("put (unmounted store)")
    store = base / "store"
    init_repository(store).close()
    with vfs.open(store, writable=True) as vol:
        drop_caches()
        start = time.perf_counter()
        vol.put("data", folder, progress=False)
        put = time.perf_counter() - start
        packed = pack_bytes(store)
        log("put again (unchanged)")
        start = time.perf_counter()
        again = vol.put("data", folder, progress=False)
        second = time.perf_counter() - start
        stored_again = pack_bytes(store) - packed
        log("read back, get")
        back = read_back(store)
        drop_caches()
        start = time.perf_counter()
        vol.get("data", base / "out", progress=False)
        got = time.perf_counter() - start
    copy = copy_into_mount(base, folder) if mount else None

    mib = total / 2**20
    return [
        {"what": "put vs bare ingest", "value": bare / put, "target": f">= {TARGET_PUT_VS_INGEST}",
         "detail": f"put {mib / put:.1f} MiB/s, bare ingest {mib / bare:.1f} MiB/s"},
        {"what": "put vs copy into a mount", "value": None if copy is None else copy / put,
         "target": f"> {TARGET_PUT_VS_COPY}",
         "detail": "not measured" if copy is None else f"copy {mib / copy:.1f} MiB/s"},
        {"what": "second put / first put", "value": second / put, "target": f"< {TARGET_SECOND_PUT}",
         "detail": f"{second:.2f}s vs {put:.2f}s; stored {again.stored_bytes} B, packs grew {stored_again} B,"
                   f" {len(again.unchanged)} unchanged"},
        {"what": "get vs store read-back", "value": back / got, "target": f">= {TARGET_GET}",
         "detail": f"get {mib / got:.1f} MiB/s, read-back {mib / back:.1f} MiB/s"},
    ]


def report(runs: list[list[dict[str, Any]]], files: int, total: int, cached: bool, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"files": files, "bytes": total, "page_caches_dropped": cached, "runs": runs}, indent=2))
        return
    print(f"{files} files, {total / 2**20:.0f} MiB{'' if cached else ' (page caches not dropped)'}, {len(runs)} run(s)")
    for n, rows in enumerate(runs, 1):
        if len(runs) > 1:
            print(f"run {n}:")
        for r in rows:
            value = "-" if r["value"] is None else f"{r['value']:.2f}"
            print(f"  {r['what']:<26} {value:>6}  (target {r['target']})  {r['detail']}")
    if len(runs) > 1:
        print("each ratio over the runs (median):")
        for i, first in enumerate(runs[0]):
            values = [rows[i]["value"] for rows in runs if rows[i]["value"] is not None]
            if values:
                shown = " ".join(f"{v:.2f}" for v in values)
                print(f"  {first['what']:<26} {statistics.median(values):>6.2f}  (target {first['target']})  {shown}")


if __name__ == "__main__":
    sys.exit(main())
