"""Remote object stores: the `Backend` interface, its implementations, and the one place that
composes them with their wrappers (`open_backend`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from vfs.backend.base import Backend, Failure, check_key, is_transient
from vfs.backend.limits import LimitedBackend
from vfs.backend.local import LocalBackend
from vfs.backend.memory import MemoryBackend
from vfs.backend.retry import RetryingBackend, RetryPolicy
from vfs.errors import UsageError

__all__ = ["Backend", "Failure", "RetryPolicy", "check_key", "check_url", "is_transient", "open_backend"]


def check_url(url: str, *, endpoint_url: str | None = None) -> None:
    """UsageError unless `open_backend` takes `url` and `endpoint_url`; sends nothing and makes nothing.

    `url` is `s3://BUCKET/PREFIX` (`endpoint_url`, for S3-compatible servers, `http(s)://HOST[:PORT]`),
    `file:///PATH` or an absolute path (a local folder), or `memory://NAME` (a new, empty one).
    """
    if endpoint_url is not None and not url.startswith("s3://"):
        raise UsageError("endpoint_url applies to s3:// remotes only")
    if url.startswith("s3://"):
        from vfs.backend.s3 import check_endpoint_url, parse_s3_url  # boto3 takes ~0.3 s to import

        parse_s3_url(url)
        if endpoint_url is not None:
            check_endpoint_url(endpoint_url)
    elif url.startswith("file://") or url.startswith("/"):
        if not url.removeprefix("file://").startswith("/"):
            raise UsageError(f"a local remote needs an absolute path (file:///PATH), not {url!r}")
    elif not url.startswith("memory://"):
        raise UsageError(f"unknown remote {url!r}: expected s3://BUCKET/PREFIX, file:///PATH or memory://NAME")


def open_backend(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    connections: int = 8,
    retry: RetryPolicy | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    sleep: Callable[[float], object] = time.sleep,
) -> Backend:
    """The backend for `url`, ready for concurrent use: retries outside, a connection limit inside.

    `url` and `endpoint_url` are as `check_url` takes them; `region` is the bucket's (S3 only).

    Args:
        connections: requests in flight at most (and the S3 connection pool's size).
        retry: the retry policy (default `RetryPolicy()`).
        connect_timeout, read_timeout: S3 only; seconds.
        sleep: how to wait between retries (tests pass one that does not).

    Raises:
        UsageError: an unknown scheme or a malformed URL.
        BackendError: the client cannot be set up.
    """
    check_url(url, endpoint_url=endpoint_url)
    raw: Backend
    if url.startswith("s3://"):
        from vfs.backend.s3 import S3Backend  # boto3 takes ~0.3 s to import: only when needed

        raw = S3Backend(url, endpoint_url=endpoint_url, region=region, connections=connections,
                        connect_timeout=connect_timeout, read_timeout=read_timeout)
    elif url.startswith("memory://"):
        raw = MemoryBackend(url.removeprefix("memory://"))
    else:
        raw = LocalBackend(Path(url.removeprefix("file://")))
    return RetryingBackend(LimitedBackend(raw, connections), retry, sleep=sleep)
