"""Measure: the requests the writer lease adds to sync rounds, against a local moto server behind the
fault proxy, with conditional PUTs honoured and stripped (as Garage ignores them).

Each round writes one small file and runs `Uploader.round()`; the requests the proxy forwarded are
counted by kind. The first round takes the lease (probe, claim, verification); later ones only check
it before the pointer's PUT. Not a test: prints the counts and exits 0.

    .venv/bin/python scripts/lease_requests.py
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
                  AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)

import boto3
import trio

from tests.backend.faultproxy import FaultProxy
from tests.s3_server import start_moto, stop_moto
from tests.sync.conftest import backend_of, make_store, write
from vfs.config import RemoteConfig
from vfs.sync.uploader import Uploader


def kind(method: str, path: str) -> str:
    what = ("lease" if "leases" in path or "lease-probe" in path else "pack" if "/packs/" in path
            else "catalog" if "/catalog/" in path else "config" if path.endswith("/config") else "other")
    return f"{method} {what}"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lease-requests-"))
    proc, url = start_moto(tmp / "moto.log")
    try:
        bucket = f"lease-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
        for strip in (False, True):
            with FaultProxy(url, strip_conditional=strip) as proxy:
                remote = RemoteConfig(f"s3://{bucket}/v{int(strip)}", proxy.url)
                repo = make_store(tmp / f"s{int(strip)}", remote)
                up = Uploader(repo, backend_of(remote))
                for i in range(3):
                    start = len(proxy.forwarded)
                    write(repo, "f", os.urandom(1000) + bytes([i]))
                    trio.run(up.round)
                    counts = collections.Counter(kind(m, p) for m, p, _ in proxy.forwarded[start:])
                    lease = sum(n for k, n in counts.items() if k.endswith("lease"))
                    print(f"{'stripped' if strip else 'honoured'} round {i + 1}: {lease} lease request(s) of"
                          f" {sum(counts.values())}: {dict(sorted(counts.items()))}")
                up.release_lease()
                repo.close()
    finally:
        stop_moto(proc)


if __name__ == "__main__":
    main()
