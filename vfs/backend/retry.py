"""A wrapper that retries transient failures with exponential backoff and full jitter.

Attempt n (from 1) that fails transiently is followed by a sleep drawn uniformly from
[0, min(max_delay, base_delay * 2**(n-1))] ("full jitter": many clients that failed together do not
come back together). Retrying stops after `max_attempts` attempts, or when the next sleep would end
past `max_time` seconds after the first attempt; the last error is then raised with how long it was
tried. Permanent errors (`BackendNotFound`, `BackendDenied`, ...) are raised at once.

The wrapper also keeps the current `Failure` (`failure()`): failed attempts, transient or not, since the
last request that succeeded; `vfs status` shows it while requests hang and are retried. A request
that has had no answer for `STALLED_AFTER` seconds is shown as one too (0 failed attempts yet): a
frozen endpoint fails a request only at the read timeout, a minute later.

Every request is idempotent here (objects are written whole, under content-derived keys), so a
request whose answer was lost may simply be sent again; the one exception, `put_if_absent`, may then
answer False for its own object, which its callers (the writer lease) check by reading it back.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from vfs.backend.base import Backend, Failure
from vfs.errors import BackendError, BackendNotFound, BackendUnavailable, UsageError

log = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds without an answer after which a request in flight is reported (a 16 MiB pack PUT on a slow
# uplink may take that long, which the message's "still waiting" fits as well).
STALLED_AFTER = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: bounded in attempts and in time (seconds)."""

    max_attempts: int = 10
    max_time: float = 120.0
    base_delay: float = 0.25
    max_delay: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, not {self.max_attempts}")
        for name in ("max_time", "base_delay", "max_delay"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be non-negative, not {getattr(self, name)}")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The sleep after failed attempt number `attempt` (1-based)."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 60)))


class RetryingBackend(Backend):
    """`inner` with transient failures retried under `policy`.

    Args:
        sleep, clock: injectable for tests (default `time.sleep`, `time.monotonic`).
        rng: the jitter's source (default: a fresh, unseeded `random.Random`).
    """

    def __init__(
        self,
        inner: Backend,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._failure: Failure | None = None
        self._failure_lock = threading.Lock()  # requests run in many threads
        # Attempts in flight: (op, key, start on `clock`, start in wall-clock ns), by a token of their own.
        self._in_flight: dict[object, tuple[str, str, float, int]] = {}

    def failure(self) -> Failure | None:
        """The failure requests meet now: failed attempts since the last success, else a stalled one."""
        if self._failure is not None:
            return self._failure
        with self._failure_lock:
            oldest = min(self._in_flight.values(), key=lambda a: a[2], default=None)
        if oldest is None:
            return None
        op, key, start, since_ns = oldest
        waited = self._clock() - start
        if waited < STALLED_AFTER:
            return None
        return Failure(f"{self.url}: still waiting for an answer to {op.upper()} {key} after {waited:.0f}s",
                       since_ns, 0)

    def _succeeded(self) -> None:
        if self._failure is not None:
            with self._failure_lock:
                self._failure = None

    @contextlib.contextmanager
    def _waiting(self, op: str, key: str) -> Iterator[None]:
        """An attempt in flight (for `failure`) while the block runs."""
        token = object()
        with self._failure_lock:
            self._in_flight[token] = (op, key, self._clock(), time.time_ns())
        try:
            yield
        finally:
            with self._failure_lock:
                del self._in_flight[token]

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        start = self._clock()
        attempt = 1
        while True:
            try:
                with self._waiting(op, key):
                    result = fn()
            except BackendError as e:
                attempt = self._failed(op, key, e, attempt, start)
            else:
                self._succeeded()
                return result

    def _failed(self, op: str, key: str, e: BackendError, attempt: int, start: float) -> int:
        """Sleep before the next attempt and return its number, or raise if there is to be none."""
        if isinstance(e, BackendNotFound):
            self._succeeded()  # the endpoint answered
        else:
            permanent = not self.inner.is_transient(e)
            with self._failure_lock:
                f = self._failure
                self._failure = (f.then(str(e), permanent=permanent) if f is not None
                                 else Failure(str(e), time.time_ns(), 1, permanent))
        if not self.inner.is_transient(e):
            raise e
        elapsed = self._clock() - start
        delay = self.policy.backoff(attempt, self._rng)
        if attempt >= self.policy.max_attempts or elapsed + delay > self.policy.max_time:
            raise BackendUnavailable(
                f"{e} (gave up after {attempt} attempt{'s' if attempt > 1 else ''} in {elapsed:.1f}s)"
            ) from e
        # `e` names the endpoint and the object already (and never a credential).
        log.info("retrying in %.2fs after attempt %d of %d failed: %s", delay, attempt, self.policy.max_attempts, e)
        self._sleep(delay)
        return attempt + 1

    def put(self, key: str, data: bytes) -> None:
        self._call("put", key, lambda: self.inner.put(key, data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        # Not idempotent: a resent request whose first one landed answers False (see Backend.put_if_absent).
        return self._call("put", key, lambda: self.inner.put_if_absent(key, data))

    def get(self, key: str) -> bytes:
        return self._call("get", key, lambda: self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._call("get", key, lambda: self.inner.get_range(key, offset, length))

    def head(self, key: str) -> int | None:
        return self._call("head", key, lambda: self.inner.head(key))

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        # An interrupted listing resumes after the last key it yielded; progress restarts the count.
        last = start_after
        attempt, start = 1, self._clock()
        while True:
            try:
                keys = iter(self.inner.list(prefix, start_after=last))
                while True:
                    with self._waiting("list", prefix):  # a page's request (not the caller's work between keys)
                        key = next(keys, None)
                    if key is None:
                        break
                    last = key
                    attempt, start = 1, self._clock()
                    self._succeeded()
                    yield key
                self._succeeded()
                return
            except BackendError as e:
                attempt = self._failed("list", prefix, e, attempt, start)

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.inner.delete(key))

    def is_transient(self, exc: BaseException) -> bool:
        return self.inner.is_transient(exc)

    def close(self) -> None:
        self.inner.close()
