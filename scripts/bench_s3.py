"""Benchmark: PUT throughput of the vfs backend stack against plain boto3, in the same run.

Starts a moto server on 127.0.0.1 (dummy credentials), then uploads the same N MiB of random bytes in
objects of 8 MiB with 4 threads, alternately (a) through one plain boto3 client (default
configuration, path-style addressing) and (b) through `open_backend("s3://...")` (retry and limit
wrappers, the same concurrency). Each round deletes what it wrote. Prints the median MB/s of each and
their ratio; the sync layer's target is that the stack reach at least 0.8x plain PUTs.

This is a benchmark, not a test: it prints figures next to their target and exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
import botocore.config

from tests.s3_server import start_moto, stop_moto
from vfs.backend import open_backend

MiB = 1024 * 1024
TARGET = 0.8


def timed_puts(put: Callable[[str, bytes], object], objects: list[bytes], threads: int, prefix: str) -> float:
    """MB/s of putting `objects` with `threads` threads."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: put(f"{prefix}/{i:05d}", objects[i]), range(len(objects))))
    elapsed = time.perf_counter() - start
    return sum(map(len, objects)) / 1e6 / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="MiB uploaded per measurement (default 256)")
    parser.add_argument("--object", type=int, default=8, help="MiB per object (default 8)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each, alternating (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_DEFAULT_REGION="us-east-1",
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    os.environ.pop("AWS_PROFILE", None)
    count = max(1, args.size // args.object)
    objects = [os.urandom(args.object * MiB) for _ in range(count)]

    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        proc, endpoint = start_moto(Path(tmp) / "moto.log")
        try:
            plain = boto3.session.Session().client(
                "s3", endpoint_url=endpoint,
                config=botocore.config.Config(s3={"addressing_style": "path"}, max_pool_connections=args.threads),
            )
            plain.create_bucket(Bucket="bench")
            stack = open_backend("s3://bench/stack", endpoint_url=endpoint, connections=args.threads)

            def plain_put(key: str, data: bytes) -> None:
                plain.put_object(Bucket="bench", Key=f"plain/{key}", Body=data)

            def clean() -> None:
                for key in list(stack.list("")):
                    stack.delete(key)
                for page in plain.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="plain/"):
                    for item in page.get("Contents", ()):
                        plain.delete_object(Bucket="bench", Key=item["Key"])

            plain_rates, stack_rates = [], []
            timed_puts(plain_put, objects[:2], args.threads, "warmup")  # connections, first-request costs
            timed_puts(stack.put, objects[:2], args.threads, "warmup")
            clean()
            for r in range(args.rounds):
                plain_rates.append(timed_puts(plain_put, objects, args.threads, f"r{r}"))
                clean()
                stack_rates.append(timed_puts(stack.put, objects, args.threads, f"r{r}"))
                clean()
            stack.close()
            plain.close()
        finally:
            stop_moto(proc)

    plain_mb, stack_mb = statistics.median(plain_rates), statistics.median(stack_rates)
    result = {
        "bytes_per_round": count * args.object * MiB, "object_mib": args.object, "threads": args.threads,
        "rounds": args.rounds, "plain_boto3_mb_s": round(plain_mb, 1), "stack_mb_s": round(stack_mb, 1),
        "ratio": round(stack_mb / plain_mb, 3), "target": TARGET,
        "plain_all": [round(x, 1) for x in plain_rates], "stack_all": [round(x, 1) for x in stack_rates],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"PUT {count} x {args.object} MiB objects, {args.threads} threads, moto on 127.0.0.1, "
          f"median of {args.rounds} rounds")
    print(f"  plain boto3         {plain_mb:8.1f} MB/s   {result['plain_all']}")
    print(f"  vfs backend stack   {stack_mb:8.1f} MB/s   {result['stack_all']}")
    ok = "ok" if result["ratio"] >= TARGET else "BELOW TARGET"
    print(f"  ratio               {result['ratio']:8.3f}x    (target >= {TARGET}: {ok})")


if __name__ == "__main__":
    main()
