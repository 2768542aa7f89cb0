"""Benchmark of follower mounts (`vfs mount --follow`) against a local moto server, through the real CLI.

Prints, measured in one run (a script, not a test; it exits 0 whatever the figures):
1. Listing and cached reads, follower against a local mount of the same volume (the writer's store
   mounted with `vfs mount`): `ls -lR` of a tree of --files files in --dirs directories, cold (the
   first listing after mount) and warm (the second); reads of every file once the follower's cache
   holds them, again in the same mounts (the page cache) and after both were mounted afresh (the
   follower's cache directory against the writer's packs). Ratios follower/local, target >= 0.8x.
2. Latency: from the writer's `vfs sync --wait` returning to a follower showing the change (the
   content of one file, polled), median and max over --rounds rounds, for --refresh 10 (the default)
   and 1 at once. Each round starts after a random pause, so it does not lock onto a follower's timer.
3. Bytes per refresh: a follower of a volume of --big files, refreshed by `vfs refresh --json` after
   the writer changed one file (its --refresh is an hour, so no background refresh races it): the
   answer's "fetched" and the response bytes counted by a proxy in front of moto
   (tests/backend/faultproxy.py), against the volume's base checkpoint object.
Volumes are built with vfs.catalog.bulk.bulk_create_files and published with `vfs sync --wait`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
import botocore.config

from tests.backend.faultproxy import FaultProxy
from tests.s3_server import start_moto, stop_moto
from vfs.catalog.bulk import bulk_create_files
from vfs.repository import Repository
from vfs.sync.checkpoint import Manifest
from vfs.types import ROOT_INO

VFS = [sys.executable, "-m", "vfs.cli.main"]
BUCKET = "bench"
MiB = 1024 * 1024


def vfs(*args: str | Path, timeout: float = 900) -> str:
    done = subprocess.run([*VFS, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"vfs {' '.join(map(str, args))} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def is_mounted(mnt: Path) -> bool:
    target = str(mnt.absolute())
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class Mounts:
    """The mounts this run made; whatever is still mounted is unmounted at `close` (also on failure)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._mounted: list[Path] = []

    def local(self, store: Path, mnt: Path) -> Path:
        mnt.mkdir(exist_ok=True)
        self._mounted.append(mnt)
        vfs("mount", store, mnt)
        return mnt

    def follow(self, prefix: str, mnt: Path, cache: Path, refresh: float, endpoint: str | None = None) -> Path:
        mnt.mkdir(exist_ok=True)
        self._mounted.append(mnt)
        vfs("mount", "--follow", f"s3://{BUCKET}/{prefix}", mnt, "--endpoint-url", endpoint or self.endpoint,
            "--cache-dir", cache, "--refresh", str(refresh))
        return mnt

    def umount(self, mnt: Path) -> None:
        self._mounted.remove(mnt)
        if not is_mounted(mnt):
            return
        done = subprocess.run([*VFS, "umount", str(mnt)], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            print(f"vfs umount {mnt} failed ({done.stderr.strip()}): detaching it", file=sys.stderr)
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)

    def close(self) -> None:
        for mnt in reversed(list(self._mounted)):
            try:
                self.umount(mnt)
            except Exception as e:  # keep unmounting the others
                print(f"unmounting {mnt}: {e}", file=sys.stderr)
                subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)


def init(store: Path, prefix: str, endpoint: str) -> None:
    vfs("init", store, "--remote", f"s3://{BUCKET}/{prefix}", "--endpoint-url", endpoint)


def build_tree(store: Path, dirs: int, files: int, size: int, scratch: Path) -> None:
    """`files` files of `size` random bytes, spread over `dirs` directories of the root."""
    rng = random.Random(1)
    uid, gid = os.getuid(), os.getgid()
    with Repository.open(store) as repo:
        known = repo.catalog.has_chunk
        for d in range(dirs):
            dino = repo.catalog.create(ROOT_INO, f"d{d:03d}".encode(), stat.S_IFDIR | 0o755, uid, gid).ino
            batch = []
            for i in range(d, files, dirs):
                scratch.write_bytes(rng.randbytes(size))
                batch.append((f"f{i:06d}".encode(), [repo.chunks.ingest(scratch, known, sync=False)]))
            repo.chunks.sync()  # the chunks are durable before the catalog names them
            bulk_create_files(repo.catalog, dino, batch, mode=0o100644, uid=uid, gid=gid)
        probe = repo.catalog.create(ROOT_INO, b"probe", 0o100644, uid, gid).ino
        repo.commit_bytes(probe, b"round -1")


def build_flat(store: Path, files: int) -> None:
    """`files` small files in the root, in one commit (16 distinct contents)."""
    with Repository.open(store) as repo:
        contents = [repo.chunks.ingest_bytes(b"%d" % i, repo.catalog.has_chunk) for i in range(16)]
        bulk_create_files(repo.catalog, ROOT_INO, [(b"f%06d" % i, [contents[i % 16]]) for i in range(files)],
                          mode=0o100644, uid=os.getuid(), gid=os.getgid())


def change_one(store: Path, name: bytes, data: bytes) -> None:
    with Repository.open(store) as repo:
        ino = repo.catalog.lookup(ROOT_INO, name)
        assert ino is not None
        repo.commit_bytes(ino, data)


def ls_lr(mnt: Path) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(["ls", "-lR", str(mnt)], capture_output=True, text=True, check=True)
    return time.perf_counter() - t, done.stdout.replace(str(mnt), "MNT")


def files_of(mnt: Path) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, names in os.walk(mnt) for f in names)


def read_all(paths: list[str]) -> tuple[float, int]:
    """(seconds, bytes) of reading every file whole, one after the other."""
    total = 0
    t = time.perf_counter()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            while chunk := os.read(fd, MiB):
                total += len(chunk)
        finally:
            os.close(fd)
    return time.perf_counter() - t, total


def digest_all(paths: list[str]) -> str:
    h = hashlib.blake2b()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def listing_and_reads(args: argparse.Namespace, work: Path, mounts: Mounts, store: Path,
                      proxy: FaultProxy) -> dict[str, Any]:
    """The follower reads the remote through `proxy`, which counts what it downloads."""
    local_mnt, follow_mnt, cache = work / "local-mnt", work / "follow-mnt", work / "follow-cache"
    out: dict[str, Any] = {"ls_cold": {"local": [], "follower": []}, "ls_warm": {"local": [], "follower": []}}
    for r in range(args.ls_rounds):  # each round in fresh mounts: the kernel has nothing cached
        mounts.local(store, local_mnt)
        mounts.follow("tree", follow_mnt, cache, 10, endpoint=proxy.url)
        order = [("local", local_mnt), ("follower", follow_mnt)][:: 1 if r % 2 == 0 else -1]
        listings = {}
        for kind in ("ls_cold", "ls_warm"):
            for who, mnt in order:
                seconds, listings[who] = ls_lr(mnt)
                out[kind][who].append(seconds)
        if listings["local"] != listings["follower"]:
            raise RuntimeError("ls -lR of the follower differs from the local mount's")
        mounts.umount(follow_mnt)
        mounts.umount(local_mnt)

    mounts.local(store, local_mnt)
    mounts.follow("tree", follow_mnt, cache, 10, endpoint=proxy.url)
    paths = {"local": files_of(local_mnt), "follower": files_of(follow_mnt)}
    out["files"] = len(paths["local"])
    # The first read of the follower fetches the packs from the remote into its cache.
    received = proxy.received_bytes()
    out["fill_s"], out["bytes"] = read_all(paths["follower"])
    out["fill_downloaded"] = proxy.received_bytes() - received
    read_all(paths["local"])  # the local mount's first read, so that both read from the page cache next
    out["page_cache"] = {"local": [], "follower": []}
    for r in range(args.read_rounds):
        for who in (("local", "follower") if r % 2 == 0 else ("follower", "local")):
            out["page_cache"][who].append(read_all(paths[who])[0])
    if digest_all(paths["local"]) != digest_all(paths["follower"]):
        raise RuntimeError("the follower's files differ from the local mount's")
    mounts.umount(follow_mnt)
    mounts.umount(local_mnt)
    out["fresh_mount"] = {"local": [], "follower": []}
    received = proxy.received_bytes()
    for r in range(args.read_rounds):  # fresh mounts: the follower reads its cache directory, local its packs
        mounts.local(store, local_mnt)
        mounts.follow("tree", follow_mnt, cache, 10, endpoint=proxy.url)
        for who in (("local", "follower") if r % 2 == 0 else ("follower", "local")):
            out["fresh_mount"][who].append(read_all(paths[who])[0])
        mounts.umount(follow_mnt)
        mounts.umount(local_mnt)
    out["fresh_downloaded"] = proxy.received_bytes() - received  # only pointers if the cache held
    return out


def latency(args: argparse.Namespace, work: Path, mounts: Mounts, store: Path) -> dict[str, Any]:
    """Seconds from `vfs sync --wait` returning to each follower showing the new content of `probe`."""
    local_mnt = mounts.local(store, work / "local-mnt")
    followers = {interval: mounts.follow("tree", work / f"follow-{interval:g}s-mnt", work / f"follow-{interval:g}s",
                                         interval) for interval in (10.0, 1.0)}
    seen: dict[float, list[float]] = {interval: [] for interval in followers}
    syncs: list[float] = []
    rng = random.Random(3)
    for r in range(args.rounds):
        time.sleep(rng.uniform(0, 10))  # off any follower's timer
        data = f"round {r}".encode()
        (local_mnt / "probe").write_bytes(data)
        t = time.perf_counter()
        vfs("sync", "--wait", "--quiet", "--store", store)
        synced = time.perf_counter()
        syncs.append(synced - t)
        results: dict[float, float] = {}

        def poll(interval: float, mnt: Path, data: bytes = data, synced: float = synced,
                 results: dict[float, float] = results) -> None:
            deadline = synced + 3 * interval + 60
            while time.perf_counter() < deadline:
                if read_or_none(mnt / "probe") == data:
                    results[interval] = time.perf_counter() - synced
                    return
                time.sleep(0.01)

        threads = [threading.Thread(target=poll, args=(i, m), daemon=True) for i, m in followers.items()]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        for interval in followers:
            if interval not in results:
                raise RuntimeError(f"round {r}: the follower with --refresh {interval:g} did not show the change"
                                   f" within {3 * interval + 60:g} s")
            seen[interval].append(results[interval])
        print(f"  round {r + 1}/{args.rounds}: sync {syncs[-1]:.2f} s, shown after "
              + ", ".join(f"{results[i]:.2f} s (--refresh {i:g})" for i in followers), file=sys.stderr)
    for mnt in (*followers.values(), local_mnt):
        mounts.umount(mnt)
    return {"sync_s": syncs, "seen_s": {f"{i:g}": v for i, v in seen.items()}}


def refresh_bytes(args: argparse.Namespace, work: Path, mounts: Mounts, proxy: FaultProxy,
                  client: Any) -> dict[str, Any]:
    store = work / "big-store"
    t = time.perf_counter()
    init(store, "big", mounts.endpoint)
    build_flat(store, args.big)
    vfs("sync", "--wait", "--quiet", "--store", store)
    print(f"built and synced a volume of {args.big} files in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    received = proxy.received_bytes()
    mnt = mounts.follow("big", work / "big-mnt", work / "big-cache", 3600, endpoint=proxy.url)
    out: dict[str, Any] = {"mount_bytes": proxy.received_bytes() - received, "fetched": [], "http": [],
                           "refresh_s": [], "objects": []}
    received, seen = proxy.received_bytes(), len(proxy.forwarded)
    idle = json.loads(vfs("refresh", mnt, "--json"))
    assert not idle["changed"], idle
    out["idle_http"] = proxy.received_bytes() - received
    out["idle_requests"] = [f"{m} {p.split('?')[0].removeprefix(f'/{BUCKET}/')}" for m, p, _ in proxy.forwarded[seen:]]
    rng = random.Random(4)
    for r in range(args.changes):
        name, data = b"f%06d" % rng.randrange(args.big), rng.randbytes(4096)
        change_one(store, name, data)
        vfs("sync", "--wait", "--quiet", "--store", store)
        received, seen = proxy.received_bytes(), len(proxy.forwarded)
        t = time.perf_counter()
        answer = json.loads(vfs("refresh", mnt, "--json"))
        out["refresh_s"].append(time.perf_counter() - t)
        if not answer.get("changed"):
            raise RuntimeError(f"change {r}: the refresh found nothing new: {answer}")
        out["fetched"].append(answer["fetched"])
        out["http"].append(proxy.received_bytes() - received)
        out["objects"].append([p.split("?")[0].removeprefix(f"/{BUCKET}/") for m, p, _ in proxy.forwarded[seen:]
                               if m == "GET"])
        if read_or_none(mnt / name.decode()) != data:
            raise RuntimeError(f"change {r}: the follower does not show the new content of {name.decode()}")
    mounts.umount(mnt)
    manifest = Manifest.load(store)
    assert manifest is not None
    sizes = {key: client.head_object(Bucket=BUCKET, Key=f"big/{key}")["ContentLength"] for key in manifest.chain}
    out["base_key"], out["base_bytes"] = manifest.chain[0], sizes[manifest.chain[0]]
    out["delta_bytes"] = [size for key, size in sizes.items() if key.endswith("-delta")]
    out["db_bytes"] = len(manifest.hashes) * manifest.block_size
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def report(args: argparse.Namespace, res: dict[str, Any]) -> None:
    lr = res["listing"]
    mb = lr["bytes"] / 1e6
    print(f"1. follower vs local mount of the same volume: {lr['files']} files of {args.size} bytes in"
          f" {args.dirs} directories ({mb:.0f} MB); medians; ratio = follower/local speed, target >= 0.8x")
    print(f"   {'':34} {'local':>10} {'follower':>10} {'ratio':>7}")
    for key, label in (("ls_cold", "ls -lR, cold (first after mount)"), ("ls_warm", "ls -lR, warm (second)")):
        loc, fol = median(lr[key]["local"]), median(lr[key]["follower"])
        print(f"   {label:34} {loc:9.2f}s {fol:9.2f}s {loc / fol:6.2f}x")
    for key, label in (("page_cache", "read again, same mounts"), ("fresh_mount", "read, fresh mounts (disk cache)")):
        loc, fol = median(lr[key]["local"]), median(lr[key]["follower"])
        print(f"   {label:34} {mb / loc:5.0f}MB/s  {mb / fol:5.0f}MB/s  {loc / fol:6.2f}x")
        print(f"   {'':34} {lr['files'] / loc:6.0f}/s   {lr['files'] / fol:6.0f}/s    (files)")
    print(f"   (the follower's first read, fetching from moto: {mb / lr['fill_s']:.0f} MB/s,"
          f" {lr['files'] / lr['fill_s']:.0f} files/s, {lr['fill_downloaded'] / 1e6:.0f} MB downloaded;"
          f" in the {args.read_rounds} fresh mounts after it: {lr['fresh_downloaded']:,} bytes)")
    lat = res["latency"]
    print(f"2. from `vfs sync --wait` returning to the follower showing the change, over {args.rounds} rounds"
          f" (the sync itself: median {median(lat['sync_s']):.2f} s, max {max(lat['sync_s']):.2f} s)")
    for interval, seen in lat["seen_s"].items():
        print(f"   --refresh {interval:>2} s: median {median(seen):.2f} s, max {max(seen):.2f} s")
    rb = res["refresh"]
    print(f"3. bytes a follower downloads per refresh after a 1-file change, volume of {args.big} files"
          f" (catalog {rb['db_bytes'] / MiB:.1f} MiB), over {args.changes} changes:")
    print(f"   base checkpoint object {rb['base_key']}: {rb['base_bytes']:,} bytes (the mount fetched"
          f" {rb['mount_bytes']:,} bytes)")
    print(f"   refresh answer 'fetched': median {median(rb['fetched']):,.0f}, max {max(rb['fetched']):,} bytes"
          f" = {median(rb['fetched']) / rb['base_bytes']:.2%} of the base")
    print(f"   HTTP response bodies:     median {median(rb['http']):,.0f}, max {max(rb['http']):,} bytes"
          f" = {median(rb['http']) / rb['base_bytes']:.2%} of the base (pointer included)")
    print(f"   objects per refresh: {', '.join(rb['objects'][-1])}; a refresh with no change: {rb['idle_http']:,}"
          f" bytes ({', '.join(rb['idle_requests'])})")
    print(f"   `vfs refresh` took median {median(rb['refresh_s']):.2f} s, max {max(rb['refresh_s']):.2f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    full = {"files": 10_000, "dirs": 100, "ls_rounds": 3, "read_rounds": 5, "rounds": 20, "big": 100_000, "changes": 5}
    quick = {"files": 1000, "dirs": 10, "ls_rounds": 2, "read_rounds": 3, "rounds": 3, "big": 20_000, "changes": 3}
    p.add_argument("--files", type=int, help="files of the tree listed and read (10000)")
    p.add_argument("--dirs", type=int, help="directories they are spread over (100)")
    p.add_argument("--size", type=int, default=16384, help="bytes of each file of the tree (16384)")
    p.add_argument("--ls-rounds", type=int, help="fresh mounts listed cold and warm (3)")
    p.add_argument("--read-rounds", type=int, help="reads of all files in each way, alternating (5)")
    p.add_argument("--rounds", type=int, help="sync-to-follower rounds (20)")
    p.add_argument("--big", type=int, help="files of the volume refreshed after 1-file changes (100000)")
    p.add_argument("--changes", type=int, help="1-file changes, each refreshed (5)")
    p.add_argument("--quick", action="store_true", help="a small run (options given still count): "
                   + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in quick.items()))
    p.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="where to work (/var/tmp)")
    p.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    args = p.parse_args()
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # SIGTERM (and SIGINT, which a shell's background job ignores) unwind like an error: everything is unmounted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret", AWS_DEFAULT_REGION="us-east-1",
                      AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                      AWS_EC2_METADATA_DISABLED="true")
    os.environ.pop("AWS_PROFILE", None)
    work = Path(tempfile.mkdtemp(prefix="vfs-bench-follow-", dir=args.dir))
    res: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, work, ignore_errors=True)
        proc, endpoint = start_moto(work / "moto.log")
        stack.callback(stop_moto, proc)
        proxy = stack.enter_context(FaultProxy(endpoint, lifetime=24 * 3600))
        mounts = Mounts(endpoint)
        stack.callback(mounts.close)
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint, config=botocore.config.Config(s3={"addressing_style": "path"}))
        client.create_bucket(Bucket=BUCKET)

        store = work / "tree-store"
        t = time.perf_counter()
        init(store, "tree", endpoint)
        build_tree(store, args.dirs, args.files, args.size, work / "scratch")
        vfs("sync", "--wait", "--quiet", "--store", store)
        print(f"built and synced a tree of {args.files} files in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        with timed("listing and reads"):
            res["listing"] = listing_and_reads(args, work, mounts, store, proxy)
        with timed("sync-to-follower latency"):
            res["latency"] = latency(args, work, mounts, store)
        with timed("bytes per refresh"):
            res["refresh"] = refresh_bytes(args, work, mounts, proxy, client)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        report(args, res)
    return 0


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    t = time.perf_counter()
    print(f"{what}...", file=sys.stderr)
    yield
    print(f"{what}: {time.perf_counter() - t:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
