"""The S3 backend stack under injected faults (tests/backend/faultproxy.py between it and moto)."""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.backend.faultproxy import DEFAULT_KINDS, FaultProxy
from tests.s3_server import SECRET_KEY, free_port
from vfs.backend import Backend, RetryPolicy, open_backend
from vfs.backend.s3 import S3Backend
from vfs.errors import BackendDenied, BackendUnavailable

pytestmark = pytest.mark.s3

FAST_RETRY = RetryPolicy(max_attempts=12, max_time=60.0, base_delay=0.005, max_delay=0.05)


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    """A fault proxy in front of moto (no faults until the test sets `rate`)."""
    with FaultProxy(moto_endpoint) as p:
        yield p


def stack(endpoint: str, bucket: str, **options: Any) -> Backend:
    options.setdefault("retry", FAST_RETRY)
    return open_backend(f"s3://{bucket}/faults", endpoint_url=endpoint, connections=4, **options)


def test_puts_and_gets_survive_30_percent_faults(
    proxy: FaultProxy, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vfs.backend.retry")
    proxy.rate = 0.3
    rng = random.Random(5)
    objects = {f"obj/{i:03d}/{rng.getrandbits(32):08x}": rng.randbytes(rng.randrange(0, 200_000)) for i in range(200)}
    with stack(proxy.url, s3_bucket, read_timeout=5.0) as backend, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda kv: backend.put(*kv), objects.items()))
        got = dict(zip(objects, pool.map(backend.get, objects), strict=True))
        listed = list(backend.list("obj/"))
    assert got == objects
    assert listed == sorted(objects)
    assert proxy.stats["requests"] > 400
    for kind in DEFAULT_KINDS:
        assert proxy.stats[kind] > 0, (kind, proxy.stats)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert retries and all(r.levelno == logging.INFO for r in retries)
    assert SECRET_KEY not in caplog.text


def test_truncated_body_is_never_returned(moto_endpoint: str, s3_bucket: str) -> None:
    data = random.Random(2).randbytes(300_000)
    with S3Backend(f"s3://{s3_bucket}/faults", endpoint_url=moto_endpoint) as direct:
        direct.put("victim", data)
    with FaultProxy(moto_endpoint, rate=1.0, kinds=["truncate"]) as proxy:
        with S3Backend(f"s3://{s3_bucket}/faults", endpoint_url=proxy.url) as raw:
            for read in (lambda: raw.get("victim"), lambda: raw.get_range("victim", 1000, 200_000)):
                with pytest.raises(BackendUnavailable) as info:
                    read()
                assert raw.is_transient(info.value)
        retry = RetryPolicy(max_attempts=3, base_delay=0)
        with stack(proxy.url, s3_bucket, retry=retry) as backend, pytest.raises(BackendUnavailable, match="3 attempts"):
            backend.get("victim")
        assert proxy.stats["truncate"] == 5
        proxy.rate = 0.0
        with stack(proxy.url, s3_bucket) as backend:
            assert backend.get("victim") == data


@pytest.mark.parametrize("kind", ["reset", "reset_after", "500", "503", "slowdown", "truncate"])
def test_each_fault_is_transient(moto_endpoint: str, s3_bucket: str, kind: str) -> None:
    with S3Backend(f"s3://{s3_bucket}/faults", endpoint_url=moto_endpoint) as direct:
        direct.put("k", b"some bytes to cut in half")
    with (
        FaultProxy(moto_endpoint, rate=1.0, kinds=[kind]) as proxy,
        S3Backend(f"s3://{s3_bucket}/faults", endpoint_url=proxy.url) as raw,
    ):
        for op in (lambda: raw.get("k"), lambda: raw.put("k", b"new"), lambda: raw.head("k")):
            with pytest.raises(BackendUnavailable) as info:
                op()
            assert raw.is_transient(info.value)


def test_read_timeout_is_transient(moto_endpoint: str, s3_bucket: str) -> None:
    with (
        FaultProxy(moto_endpoint, rate=1.0, kinds=["stall"], stall=1.5) as proxy,
        S3Backend(f"s3://{s3_bucket}/faults", endpoint_url=proxy.url, read_timeout=0.3) as raw,
        pytest.raises(BackendUnavailable, match="ReadTimeout"),
    ):
        raw.head("k")


def test_access_denied_fails_at_once_without_secrets(
    moto_endpoint: str, s3_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="vfs")
    sleeps: list[float] = []
    with FaultProxy(moto_endpoint, status=403) as proxy, stack(proxy.url, s3_bucket, sleep=sleeps.append) as backend:
        for op in (lambda: backend.put("k", b"x"), lambda: backend.get("k"), lambda: backend.head("k")):
            with pytest.raises(BackendDenied) as info:
                op()
            message = str(info.value)
            assert proxy.url in message and "access denied" in message
            assert SECRET_KEY not in message
        assert proxy.stats["requests"] == 3 and sleeps == []  # never retried
    assert SECRET_KEY not in caplog.text


def test_nothing_listening_fails_within_max_time(s3_credentials: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vfs")
    endpoint = f"http://127.0.0.1:{free_port()}"
    retry = RetryPolicy(max_attempts=100, max_time=2.0, base_delay=0.05, max_delay=0.5)
    start = time.monotonic()
    with (
        stack(endpoint, "nobucket", retry=retry, connect_timeout=1.0) as backend,
        pytest.raises(BackendUnavailable) as info,
    ):
        backend.put("k", b"x")
    elapsed = time.monotonic() - start
    assert elapsed < 2.0 + 1.0 + 2.0  # max_time, plus one connect timeout, plus a loaded machine's slack
    message = str(info.value)
    assert endpoint in message and "gave up after" in message
    assert SECRET_KEY not in message and SECRET_KEY not in caplog.text


def test_the_proxy_never_forwards_a_body_cut_short_by_a_dying_client(proxy: FaultProxy, s3_bucket: str) -> None:
    # A killed uploader leaves a PUT with less body than it announced; a real endpoint stores nothing.
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(f"PUT /{s3_bucket}/faults/cut HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n\r\n".encode()
                     + b"x" * 10)
    proxy.wait_idle(timeout=30, settle=0.5)
    assert proxy.forwarded == []
    with stack(proxy.url, s3_bucket) as backend:
        assert backend.head("cut") is None


@pytest.mark.s3
def test_proxy_can_strip_conditional_headers_as_garage_ignores_them(s3_bucket: str, moto_endpoint: str) -> None:
    from vfs.backend.s3 import S3Backend

    with FaultProxy(moto_endpoint) as proxy, S3Backend(f"s3://{s3_bucket}/strip", endpoint_url=proxy.url) as b:
        assert b.put_if_absent("k", b"1") and not b.put_if_absent("k", b"2")  # moto honours If-None-Match
        proxy.strip_conditional = True
        assert b.put_if_absent("k", b"3")  # the header never arrives: the object is replaced
        assert b.get("k") == b"3" and proxy.stats["stripped"] == 1
