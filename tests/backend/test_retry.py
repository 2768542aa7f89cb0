"""RetryingBackend: backoff with full jitter, bounds in attempts and time, resumed listings, the current
failure."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from vfs.backend import open_backend
from vfs.backend.base import Failure
from vfs.backend.memory import MemoryBackend
from vfs.backend.retry import STALLED_AFTER, RetryingBackend, RetryPolicy
from vfs.errors import BackendDenied, BackendNotFound, BackendUnavailable, UsageError


class Flaky(MemoryBackend):
    """Fails the next `failures` calls of get and list with `error`; list fails after `list_after` keys."""

    def __init__(self, failures: int, error: Exception | None = None, list_after: int = 0) -> None:
        super().__init__("flaky")
        self.failures = failures
        self.error = error or BackendUnavailable("memory://flaky: injected 503")
        self.list_after = list_after
        self.calls = 0

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise self.error

    def get(self, key: str) -> bytes:
        self._maybe_fail()
        return super().get(key)

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        for i, key in enumerate(super().list(prefix, start_after=start_after)):
            if i == self.list_after:
                self._maybe_fail()
            yield key


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make(inner: Flaky, policy: RetryPolicy, t: FakeTime) -> RetryingBackend:
    return RetryingBackend(inner, policy, sleep=t.sleep, clock=t.clock, rng=random.Random(0))


def test_retries_with_full_jitter_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vfs.backend.retry")
    inner, t = Flaky(5), FakeTime()
    inner.put("k", b"v")
    policy = RetryPolicy(max_attempts=10, max_time=1000, base_delay=1.0, max_delay=8.0)
    assert make(inner, policy, t).get("k") == b"v"
    assert inner.calls == 6
    assert len(t.sleeps) == 5
    for n, s in enumerate(t.sleeps, start=1):
        assert 0 <= s <= min(8.0, 2 ** (n - 1))
    retries = [r for r in caplog.records if r.name == "vfs.backend.retry"]
    assert len(retries) == 5 and all(r.levelno == logging.INFO for r in retries)
    assert "attempt 1 of 10" in retries[0].getMessage() and "injected 503" in retries[0].getMessage()


def test_gives_up_after_max_attempts() -> None:
    inner, t = Flaky(100), FakeTime()
    inner.put("k", b"v")
    with pytest.raises(BackendUnavailable, match=r"injected 503 \(gave up after 3 attempts"):
        make(inner, RetryPolicy(max_attempts=3, base_delay=0.1), t).get("k")
    assert inner.calls == 3 and len(t.sleeps) == 2


def test_gives_up_within_max_time() -> None:
    inner, t = Flaky(100), FakeTime()
    inner.put("k", b"v")
    with pytest.raises(BackendUnavailable, match="gave up"):
        make(inner, RetryPolicy(max_attempts=1000, max_time=30.0, base_delay=1.0, max_delay=4.0), t).get("k")
    assert t.now <= 30.0
    assert inner.calls > 5


@pytest.mark.parametrize("error", [BackendNotFound("gone"), BackendDenied("403")])
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    inner, t = Flaky(1, error), FakeTime()
    with pytest.raises(type(error)):
        make(inner, RetryPolicy(), t).get("k")
    assert inner.calls == 1 and t.sleeps == []


def test_the_current_failure_lasts_until_a_request_succeeds() -> None:
    inner, t = Flaky(100), FakeTime()
    inner.put("k", b"v")
    backend = make(inner, RetryPolicy(max_attempts=3, base_delay=0.1), t)
    assert backend.failure() is None
    with pytest.raises(BackendUnavailable):
        backend.get("k")
    first = backend.failure()
    assert first is not None and first.attempts == 3 and "injected 503" in first.message
    with pytest.raises(BackendUnavailable):
        backend.get("k")
    again = backend.failure()
    assert again is not None and again.attempts == 6 and again.since_ns == first.since_ns
    inner.failures = 0
    with pytest.raises(BackendNotFound):
        backend.get("missing")  # an answer: the endpoint works
    assert backend.failure() is None
    inner.failures, inner.error = 1, BackendDenied("memory://flaky: 403")
    with pytest.raises(BackendDenied):
        backend.get("k")
    denied = backend.failure()
    assert denied is not None and denied.attempts == 1 and "403" in denied.message
    assert backend.get("k") == b"v"
    assert backend.failure() is None


def test_interrupted_listing_resumes_after_the_last_key() -> None:
    inner, t = Flaky(2, list_after=3), FakeTime()
    keys = [f"k/{i:02d}" for i in range(10)]
    for key in keys:
        inner.put(key, b"")
    assert list(make(inner, RetryPolicy(base_delay=0), t).list("k/")) == keys
    assert len(t.sleeps) == 2


def test_policy_is_checked() -> None:
    with pytest.raises(UsageError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(UsageError, match="max_time"):
        RetryPolicy(max_time=-1)


def test_open_backend_urls(tmp_path: Path) -> None:
    with open_backend(f"file://{tmp_path}/remote") as b:
        b.put("a/b", b"x")
        assert b.get("a/b") == b"x"
        assert "file://" in b.url
    for bad in ["ftp://host/x", "relative/path", "file://relative"]:
        with pytest.raises(UsageError):
            open_backend(bad)
    with pytest.raises(UsageError, match="endpoint_url"):
        open_backend("memory://x", endpoint_url="http://127.0.0.1:9")


def test_a_request_without_an_answer_is_the_current_failure_once_it_stalls() -> None:
    """A frozen endpoint fails a request only at the read timeout: meanwhile status shows it waiting."""
    t = FakeTime()
    seen: list[Failure | None] = []

    def hang() -> None:
        seen.append(backend.failure())  # as `vfs status` would ask while the request hangs
        t.now += STALLED_AFTER - 1
        seen.append(backend.failure())
        t.now += 2
        seen.append(backend.failure())

    class Frozen(MemoryBackend):
        def put(self, key: str, data: bytes) -> None:
            hang()
            super().put(key, data)

        def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
            hang()  # the listing's first page
            yield from super().list(prefix, start_after=start_after)

    backend = RetryingBackend(Frozen("frozen"), sleep=t.sleep, clock=t.clock)
    for request, shown in ((lambda: backend.put("packs/abc", b"data"), "PUT packs/abc"),
                           (lambda: list(backend.list("packs/")), "LIST packs/")):
        seen.clear()
        request()
        assert seen[:2] == [None, None]
        stalled = seen[2]
        assert stalled is not None and stalled.attempts == 0, stalled
        assert f"still waiting for an answer to {shown} after 31s" in stalled.message
        assert backend.failure() is None  # it was answered
