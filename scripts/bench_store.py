"""Benchmark of the store and the catalog, each against a baseline measured in the same run.

Data: mixed content (source-like text lines, random bytes, zeros; interleaved blocks of 1-4 MiB) is
written to a staging file, committed with `Repository.commit_file` into a fresh store and read back
whole with `Repository.iter_content` (page caches dropped first when we may). The baselines ("bare")
run BLAKE3 + zstd at the store's level over the very same chunks with a pool of as many threads as the
store's, and zstd decompress + BLAKE3 check over their results. Then one byte in the middle of the
file changes and the re-commit's new chunks are counted.

Catalog: a large catalog (directories x files x versions, built with `vfs.catalog.bulk.bulk_create_files`) and
a small one answer the same operations; the table shows both rates and their ratio.

This is a benchmark, not a test: it prints figures next to their targets and exits 0 either way.
Run it as scripts/bench-store [--size 1G] [--files 1000x1000] [--versions 5] [--json] [--dir /tmp].
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import shutil
import stat
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import blake3
import zstandard

from vfs.catalog import Catalog, Version
from vfs.catalog.bulk import bulk_create_files
from vfs.config import MiB, StoreConfig
from vfs.repository import Repository
from vfs.store import Ingested
from vfs.store.chunking import Chunker
from vfs.types import ROOT_INO, InodeNo

THREADS = 2  # the store's pool size in this run, and the baseline's
REQUEST = 128 * 1024  # bytes per Repository.read: what the kernel asks of a sequential reader
TARGET_INGEST = 0.7
TARGET_READ = 0.8
TARGET_CHANGED_CHUNKS = 2
FILE_MODE = stat.S_IFREG | 0o644
DIR_MODE = stat.S_IFDIR | 0o755


def log(msg: str) -> None:
    print(f"bench-store: {msg}", file=sys.stderr, flush=True)


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


# -- data --------------------------------------------------------------------------------------
_VOCABULARY = (
    "def class return self import from if else elif for in while try except finally with as yield lambda None"
    " True False and or not is pass break continue raise assert async await data size offset length chunk pack"
    " store catalog version commit inode parent name path buffer result value key items append extend update"
    " get set list dict tuple int bytes str len range print log error read write open close"
)
_WORDS = _VOCABULARY.split()
_PUNCT = ["(", ")", ":", ",", " = ", ".", "[", "]", " + ", " == ", "  # ", '"', "'", "{", "}"]


def _text_lines(rng: random.Random, n: int) -> list[bytes]:
    lines = []
    for _ in range(n):
        indent = " " * (4 * rng.randrange(4))
        parts = [rng.choice(_WORDS) if rng.random() < 0.7 else rng.choice(_PUNCT) for _ in range(rng.randrange(2, 14))]
        lines.append((indent + " ".join(parts) + "\n").encode())
    return lines


def generate(path: Path, size: int, seed: int = 1) -> list[tuple[int, int, str]]:
    """Write `size` bytes of mixed blocks to `path`; return (offset, length, kind) of each block."""
    rng = random.Random(seed)
    lines = _text_lines(rng, 50_000)
    blocks = []
    off = 0
    with open(path, "wb") as f:
        while off < size:
            n = min(size - off, rng.randrange(1 * MiB, 4 * MiB + 1))
            kind = rng.choice(["text", "random", "zeros"])
            if kind == "text":
                data = b"".join(rng.choices(lines, k=n // 40 + 64))[:n]
            elif kind == "random":
                data = rng.randbytes(n)
            else:
                data = bytes(n)
            f.write(data)
            blocks.append((off, n, kind))
            off += n
    return blocks


def drop_caches() -> bool:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


# -- the bare pipeline ---------------------------------------------------------------------------
_local = threading.local()


def _bare_encode(piece: memoryview, level: int) -> tuple[bytes, bool, bytes | memoryview]:
    cid = blake3.blake3(piece).digest()
    comp = getattr(_local, "comp", None)
    if comp is None:
        comp = _local.comp = zstandard.ZstdCompressor(level=level)
    packed = comp.compress(piece)
    if len(packed) + (len(piece) >> 5) < len(piece):
        return cid, True, packed
    return cid, False, piece


def _bare_decode(item: tuple[bytes, bool, bytes | memoryview, int]) -> int:
    cid, compressed, stored, plain_len = item
    if compressed:
        dec = getattr(_local, "dec", None)
        if dec is None:
            dec = _local.dec = zstandard.ZstdDecompressor()
        plain = dec.decompress(stored, max_output_size=plain_len)
    else:
        plain = stored
    if blake3.blake3(plain).digest() != cid:
        raise AssertionError("bare read-back: hash mismatch")
    return len(plain)


def bare_round(pieces: list[memoryview], pool: ThreadPoolExecutor, level: int) -> tuple[float, float]:
    """Seconds of the bare ingest (blake3 + zstd) and bare read-back (zstd -d + blake3) of `pieces`."""
    t0 = time.perf_counter()
    encoded = list(pool.map(lambda p: _bare_encode(p, level), pieces))
    t_ingest = time.perf_counter() - t0
    items = [(cid, c, stored, len(p)) for (cid, c, stored), p in zip(encoded, pieces, strict=True)]
    del encoded
    t0 = time.perf_counter()
    total = sum(pool.map(_bare_decode, items))
    t_read = time.perf_counter() - t0
    assert total == sum(len(p) for p in pieces)
    return t_ingest, t_read


def store_round(path: Path, staging: Path) -> tuple[Repository, InodeNo, Version, float, float, float, bool]:
    """A fresh store at `path`: seconds to commit `staging` into it, to read it back whole, and to read it
    back in kernel-sized requests (`Repository.read`, as a mounted store serves a sequential reader)."""
    Repository.init(path).close()
    repo = Repository.open(path, threads=THREADS)
    ino = repo.catalog.create(ROOT_INO, b"big", FILE_MODE, os.getuid(), os.getgid()).ino
    t0 = time.perf_counter()
    version = repo.commit_file(ino, staging)
    t_ingest = time.perf_counter() - t0
    dropped = drop_caches()
    t0 = time.perf_counter()
    got = sum(len(b) for b in repo.iter_content(version))
    t_read = time.perf_counter() - t0
    assert got == version.size, (got, version.size)
    drop_caches()
    t0 = time.perf_counter()
    got = sum(len(repo.read(version, offset, REQUEST)) for offset in range(0, version.size, REQUEST))
    t_requests = time.perf_counter() - t0
    assert got == version.size, (got, version.size)
    return repo, ino, version, t_ingest, t_read, t_requests, dropped


def data_bench(work: Path, size: int, rounds: int) -> dict[str, Any]:
    staging = work / "staging.bin"
    log(f"generating {size / MiB:.0f} MiB of mixed data")
    t0 = time.perf_counter()
    blocks = generate(staging, size)
    log(f"generated in {time.perf_counter() - t0:.1f} s")
    kinds = {k: sum(n for _, n, kk in blocks if kk == k) for k in ("text", "random", "zeros")}
    config = StoreConfig()  # what Repository.init writes into a new store
    times: dict[str, list[float]] = {"bare_ingest": [], "bare_read": [], "ingest": [], "read": [], "requests": []}

    with open(staging, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        pieces = [view[o : o + n] for o, n in Chunker(config).cut(view)]  # the store's cut points; not timed
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            for r in range(rounds):
                # Alternate the two, so that a noisy neighbour weighs on both alike.
                log(f"round {r + 1}/{rounds}: bare pipeline")
                bi, br = bare_round(pieces, pool, config.zstd_level)
                times["bare_ingest"].append(bi)
                times["bare_read"].append(br)
                log(f"round {r + 1}/{rounds}: Repository.commit_file, then iter_content, then Repository.read")
                repo, ino, v1, si, sr, sq, dropped = store_round(work / f"store{r}", staging)
                times["ingest"].append(si)
                times["read"].append(sr)
                times["requests"].append(sq)
                if r + 1 < rounds:
                    repo.close()
                    shutil.rmtree(work / f"store{r}")
        n_chunks = len(pieces)
        del pieces
        view.release()

    try:
        assert repo.config == config
        packed = sum(repo.chunks.pack_size(p) or 0 for p in repo.chunks.local_packs())
        log("one-byte change in the middle")
        mid = size // 2
        fd = os.open(staging, os.O_RDWR)
        try:
            os.pwrite(fd, bytes([os.pread(fd, 1, mid)[0] ^ 0xFF]), mid)
        finally:
            os.close(fd)
        mid_kind = next(k for o, n, k in blocks if o <= mid < o + n)
        ing = repo.ingest(staging)
        v2 = repo.catalog.commit_version(ino, ing)
        differing = len(set(v2.chunks) - set(v1.chunks))
    finally:
        repo.close()

    med = {k: statistics.median(v) for k, v in times.items()}
    mib = size / MiB
    return {
        "size_bytes": size,
        "mix_bytes": kinds,
        "chunks": n_chunks,
        "unique_chunks_stored": len(set(v1.chunks)),
        "packed_bytes": packed,
        "threads": THREADS,
        "zstd_level": config.zstd_level,
        "rounds": rounds,
        "seconds": times,
        "ingest_mib_s": mib / med["ingest"],
        "bare_ingest_mib_s": mib / med["bare_ingest"],
        "ingest_ratio": med["bare_ingest"] / med["ingest"],
        "ingest_ratio_per_round": [b / s for b, s in zip(times["bare_ingest"], times["ingest"], strict=True)],
        "caches_dropped": dropped,
        "read_mib_s": mib / med["read"],
        "bare_read_mib_s": mib / med["bare_read"],
        "read_ratio": med["bare_read"] / med["read"],
        "read_ratio_per_round": [b / s for b, s in zip(times["bare_read"], times["read"], strict=True)],
        "requests_mib_s": mib / med["requests"],
        "requests_ratio": med["bare_read"] / med["requests"],
        "change_offset": mid,
        "change_block_kind": mid_kind,
        "change_new_chunks": len(ing.new),
        "change_new_plain_bytes": sum(loc.plain_len for loc in ing.new),
        "change_new_stored_bytes": ing.stored_bytes,
        "change_differing_chunks": differing,
    }


# -- catalog -------------------------------------------------------------------------------------
def tiny_contents(repo: Repository, n: int) -> list[Ingested]:
    """`n` distinct small contents made of a few shared, really stored tiny chunks."""
    rng = random.Random(7)
    pieces = [rng.randbytes(rng.randrange(16, 200)) for _ in range(16)]
    out = []
    for i in range(n):
        ing = repo.chunks.ingest_bytes(
            pieces[i % 16] + pieces[(i // 16) % 16] + str(i).encode(), repo.catalog.has_chunk
        )
        out.append(ing)
    return out


def build_catalog(repo: Repository, dirs: int, files: int, versions: int) -> tuple[list[InodeNo], list[InodeNo], float]:
    cat = repo.catalog
    contents = tiny_contents(repo, 256)
    uid, gid = os.getuid(), os.getgid()
    t0 = time.perf_counter()
    dir_inos: list[InodeNo] = []
    file_inos: list[InodeNo] = []
    for d in range(dirs):
        dino = cat.create(ROOT_INO, f"d{d:05d}".encode(), DIR_MODE, uid, gid).ino
        dir_inos.append(dino)
        batch = [
            (f"file-{f:06d}.txt".encode(), [contents[(d * 31 + f * 7 + v) % len(contents)] for v in range(versions)])
            for f in range(files)
        ]
        file_inos.extend(bulk_create_files(cat, dino, batch, mode=FILE_MODE, uid=uid, gid=gid))
        if d % 100 == 99:
            log(f"  {d + 1} directories, {time.perf_counter() - t0:.0f} s")
    return dir_inos, file_inos, time.perf_counter() - t0


def _rate(n: int, fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def catalog_ops(repo: Repository, dirs: Sequence[InodeNo], files: Sequence[InodeNo], n_files: int) -> dict[str, float]:
    cat: Catalog = repo.catalog
    rng = random.Random(3)
    n = 20_000
    names = [(rng.choice(dirs), f"file-{rng.randrange(n_files):06d}.txt".encode()) for _ in range(n)]
    inos = [rng.choice(files) for _ in range(n)]
    out: dict[str, float] = {}

    def lookups() -> None:
        for parent, name in names:
            if cat.lookup(parent, name) is None:
                raise AssertionError(f"lookup of {name!r} failed")

    def listings(reps: int) -> Callable[[], None]:
        def run() -> None:
            count = 0
            for _ in range(reps):
                parent, after = rng.choice(dirs), 0
                while page := cat.readdir(parent, after):
                    count += len(page)
                    after = page[-1].cookie
            assert count == reps * n_files, count

        return run

    out["lookup/s"] = _rate(n, lookups)
    out["readdir entries/s"] = _rate(200 * n_files, listings(200))
    out["attr/s"] = _rate(n, lambda: [cat.attr(i) for i in inos])
    out["version_at/s"] = _rate(n, lambda: [cat.version_at(i) for i in inos])

    small = tiny_contents(repo, 16)
    m = 4_000
    uid, gid = os.getuid(), os.getgid()

    def commits() -> None:
        for k in range(m):
            if k % 2:
                cat.commit_version(inos[k], small[k % len(small)])
            else:
                cat.create(dirs[k % len(dirs)], f"new-{k:06d}".encode(), FILE_MODE, uid, gid)

    out["commit/s"] = _rate(m, commits)
    return out


def catalog_bench(work: Path, dirs: int, files: int, versions: int) -> dict[str, object]:
    result: dict[str, object] = {}
    for label, d in (("small", 1), ("large", dirs)):
        path = work / f"catalog-{label}"
        repo = Repository.init(path)
        try:
            log(f"building the {label} catalog: {d} x {files} files x {versions} versions")
            dir_inos, file_inos, build_s = build_catalog(repo, d, files, versions)
            result[f"{label}_files"] = len(file_inos)
            result[f"{label}_versions"] = len(file_inos) * versions
            result[f"{label}_build_s"] = build_s
            result[f"{label}_db_mib"] = sum(p.stat().st_size for p in path.glob("catalog.db*")) / MiB
            log(f"built in {build_s:.1f} s ({result[f'{label}_db_mib']:.0f} MiB); measuring")
            result[f"{label}_ops"] = catalog_ops(repo, dir_inos, file_inos, files)
        finally:
            repo.close()
        shutil.rmtree(path)
    return result


# -- report --------------------------------------------------------------------------------------
def _ok(flag: bool) -> str:
    return "ok" if flag else "BELOW TARGET"


def report_data(d: dict[str, Any]) -> list[str]:
    mix = ", ".join(f"{k} {v / MiB:.0f} MiB" for k, v in d["mix_bytes"].items())
    return [
        f"data: {d['size_bytes'] / MiB:.0f} MiB mixed ({mix}); {d['chunks']} chunks, {d['unique_chunks_stored']}"
        f" distinct, packed into {d['packed_bytes'] / MiB:.0f} MiB;"
        f" {d['threads']} threads, zstd level {d['zstd_level']}",
        f"{'':26}{'store MiB/s':>12}{'bare MiB/s':>12}{'ratio':>8}{'target':>8}",
        f"{'ingest (commit_file)':26}{d['ingest_mib_s']:12.0f}{d['bare_ingest_mib_s']:12.0f}"
        f"{d['ingest_ratio']:8.2f}{TARGET_INGEST:8.2f}  {_ok(d['ingest_ratio'] >= TARGET_INGEST)}",
        f"{'read-back (iter_content)':26}{d['read_mib_s']:12.0f}{d['bare_read_mib_s']:12.0f}"
        f"{d['read_ratio']:8.2f}{TARGET_READ:8.2f}  {_ok(d['read_ratio'] >= TARGET_READ)}",
        f"{f'read-back ({REQUEST // 1024} KiB reads)':26}{d['requests_mib_s']:12.0f}{d['bare_read_mib_s']:12.0f}"
        f"{d['requests_ratio']:8.2f}{'-':>8}",
        f"medians of {d['rounds']} rounds; per-round ratios: ingest "
        + " ".join(f"{x:.2f}" for x in d["ingest_ratio_per_round"])
        + ", read-back "
        + " ".join(f"{x:.2f}" for x in d["read_ratio_per_round"]),
        "page caches dropped before each store read-back: " + ("yes" if d["caches_dropped"] else "no (not permitted)"),
        f"1-byte change at offset {d['change_offset']} (in a {d['change_block_kind']} block), re-committed:"
        f" {d['change_new_chunks']} new chunks, {d['change_new_plain_bytes']} plain / {d['change_new_stored_bytes']}"
        f" stored bytes; {d['change_differing_chunks']} chunk(s) differ from the previous version"
        f" (target <= {TARGET_CHANGED_CHUNKS}: {_ok(d['change_new_chunks'] <= TARGET_CHANGED_CHUNKS)})",
    ]


def report_catalog(c: dict[str, Any]) -> list[str]:
    lines = [
        f"catalog: large = {c['large_files']} files, {c['large_versions']} versions, built in"
        f" {c['large_build_s']:.1f} s ({c['large_db_mib']:.0f} MiB on disk); small = {c['small_files']} files,"
        f" {c['small_versions']} versions (built in {c['small_build_s']:.2f} s)",
        f"{'operation':26}{'small':>12}{'large':>12}{'large/small':>13}",
    ]
    small, large = c["small_ops"], c["large_ops"]
    for k in small:
        lines.append(f"{k:26}{small[k]:12.0f}{large[k]:12.0f}{large[k] / small[k]:13.2f}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1G", help="data size, e.g. 1G (default) or 64M")
    ap.add_argument("--files", default="1000x1000", help="large catalog: DIRSxFILES (default 1000x1000)")
    ap.add_argument("--versions", type=int, default=5, help="versions per file (default 5)")
    ap.add_argument("--dir", default=None, help="scratch directory parent (default: the system's temp dir)")
    ap.add_argument("--rounds", type=int, default=3, help="data rounds, bare and store alternating (default 3)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--skip-data", action="store_true", help="only the catalog part")
    ap.add_argument("--skip-catalog", action="store_true", help="only the data part")
    args = ap.parse_args()
    size = parse_size(args.size)
    dirs, files = (int(x) for x in args.files.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    try:
        results: dict[str, Any] = {}
        if not args.skip_data:
            results["data"] = data_bench(work, size, args.rounds)
            for p in list(work.iterdir()):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        if not args.skip_catalog:
            results["catalog"] = catalog_bench(work, dirs, files, args.versions)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    lines = report_data(results["data"]) if "data" in results else []
    if "catalog" in results:
        lines += [""] * bool(lines) + report_catalog(results["catalog"])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
