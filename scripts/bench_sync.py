"""Benchmark: remote sync against a local moto server, with plain boto3 as the same-run baseline.

1. Upload throughput: a store of `--size` MiB of random data in 1 MiB files (16 MiB packs) is synced
   by `Uploader.round()` to a fresh prefix, alternately with plain boto3 PUTs (4 threads, one shared
   client) of the very same pack files. Target: sync >= 0.8x plain PUTs.
2. Incremental: after the sync, 1% of the files get new content; the bytes the next sync uploads
   (packs + catalog checkpoint) against the dataset size. (The issue's 1 GiB is scaled to --size.)
3. Lazy clone: time to clone with --lazy (catalog only), and time to first byte of a file in it
   (one pack fetched whole and verified).

Not a test: prints figures next to their targets and exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
import botocore.config
import trio

from tests.backend.conftest import start_moto, stop_moto
from vfs.config import RemoteConfig, StoreConfig
from vfs.repository import Repository
from vfs.sync.clone import clone
from vfs.sync.remote import open_remote_backend
from vfs.sync.uploader import Uploader
from vfs.types import ROOT_INO

MiB = 1024 * 1024


def build(store: Path, files: int) -> None:
    rng = random.Random(1)
    with Repository.init(store, StoreConfig()) as repo:
        for i in range(files):
            ino = repo.catalog.create(ROOT_INO, f"f{i:05d}".encode(), 0o100644, 0, 0).ino
            repo.commit_bytes(ino, rng.randbytes(MiB))
        repo.chunks.seal()


def set_remote(store: Path, remote: RemoteConfig) -> None:
    with Repository.open(store) as repo:
        repo.catalog.set_meta("remote", remote.to_json())


def sync(store: Path) -> tuple[float, int]:
    """(seconds, bytes sent) of one full sync round of `store` to its remote."""
    with Repository.open(store) as repo:
        assert repo.remote is not None
        backend = open_remote_backend(repo.remote)
        up = Uploader(repo, backend)
        start = time.perf_counter()
        trio.run(up.round)
        elapsed = time.perf_counter() - start
        backend.close()
        return elapsed, up.sent_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="MiB of data (default 256; the issue says 1 GiB)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, alternating (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_DEFAULT_REGION="us-east-1",
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    os.environ.pop("AWS_PROFILE", None)
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    proc, endpoint = start_moto(work / "moto.log")
    try:
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, config=botocore.config.Config(s3={"addressing_style": "path"},
                                                                       max_pool_connections=8))
        bucket = "bench"
        client.create_bucket(Bucket=bucket)
        pristine = work / "pristine"
        build(pristine, args.size)
        packs = sorted((pristine / "packs").glob("*/*.pack"))
        total = sum(p.stat().st_size for p in packs)

        plain, synced = [], []
        for r in range(args.rounds):
            prefix = uuid.uuid4().hex
            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda p, pre=prefix: client.put_object(Bucket=bucket, Key=f"{pre}/{p.name}",
                                                                      Body=p.read_bytes()), packs))
            plain.append(total / 1e6 / (time.perf_counter() - start))
            store = work / f"round{r}"
            shutil.copytree(pristine, store)
            set_remote(store, RemoteConfig(f"s3://{bucket}/{uuid.uuid4().hex}", endpoint))
            seconds, _ = sync(store)
            synced.append(total / 1e6 / seconds)
            if r < args.rounds - 1:
                shutil.rmtree(store)
        store = work / f"round{args.rounds - 1}"

        # 1% change: new content for 1% of the files, then one more sync.
        rng = random.Random(2)
        changed = max(1, args.size // 100)
        with Repository.open(store) as repo:
            for i in rng.sample(range(args.size), changed):
                ino = repo.catalog.lookup(ROOT_INO, f"f{i:05d}".encode())
                assert ino is not None
                repo.commit_bytes(ino, rng.randbytes(MiB))
        _, incremental = sync(store)

        # Lazy clone and time to first byte.
        with Repository.open(store, lock=False) as repo:
            assert repo.remote is not None
            remote = repo.remote
        backend = open_remote_backend(remote)
        start = time.perf_counter()
        lazy = clone(backend, remote, work / "lazy", lazy=True)
        clone_s = time.perf_counter() - start
        start = time.perf_counter()
        ino = lazy.catalog.lookup(ROOT_INO, f"f{args.size // 2:05d}".encode())
        assert ino is not None
        version = lazy.catalog.version_at(ino)
        assert version is not None
        first = lazy.read(version, 0, 4096)
        ttfb = time.perf_counter() - start
        assert len(first) == 4096
        lazy.close()
        backend.close()
    finally:
        stop_moto(proc)
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "dataset_mib": args.size, "pack_bytes": total,
        "plain_boto3_mb_s": statistics.median(plain), "vfs_sync_mb_s": statistics.median(synced),
        "ratio": statistics.median(synced) / statistics.median(plain), "target_ratio": 0.8,
        "changed_files": changed, "incremental_bytes": incremental,
        "incremental_fraction": incremental / total,
        "lazy_clone_s": clone_s, "lazy_ttfb_s": ttfb,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"dataset: {args.size} MiB in {args.size} files of 1 MiB, {total / MiB:.0f} MiB of packs")
    print(f"upload: plain boto3 {result['plain_boto3_mb_s']:.0f} MB/s, vfs sync {result['vfs_sync_mb_s']:.0f} MB/s"
          f" -> {result['ratio']:.2f}x (target >= 0.8x)")
    print(f"1% change ({changed} files): {incremental / MiB:.2f} MiB uploaded = "
          f"{100 * result['incremental_fraction']:.2f}% of the dataset (packs + catalog)")
    print(f"lazy clone: {clone_s:.2f} s (catalog only); first 4 KiB of a file: {ttfb * 1000:.0f} ms")


if __name__ == "__main__":
    main()
