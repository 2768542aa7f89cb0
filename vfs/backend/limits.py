"""A wrapper that bounds how many requests are in flight at once.

Sized to the connection pool beneath it, so that no thread waits inside the HTTP library for a
connection (and no request times out there) while others are still talking.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from vfs.backend.base import Backend
from vfs.errors import UsageError

T = TypeVar("T")


class LimitedBackend(Backend):
    """`inner` with at most `connections` requests in flight (a listing holds a slot per page fetch)."""

    def __init__(self, inner: Backend, connections: int) -> None:
        if connections < 1:
            raise UsageError(f"connections must be at least 1, not {connections}")
        self.inner = inner
        self.url = inner.url
        self.connections = connections
        self._slots = threading.BoundedSemaphore(connections)

    def _call(self, fn: Callable[[], T]) -> T:
        with self._slots:
            return fn()

    def put(self, key: str, data: bytes) -> None:
        self._call(lambda: self.inner.put(key, data))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._call(lambda: self.inner.put_if_absent(key, data))

    def get(self, key: str) -> bytes:
        return self._call(lambda: self.inner.get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self._call(lambda: self.inner.get_range(key, offset, length))

    def head(self, key: str) -> int | None:
        return self._call(lambda: self.inner.head(key))

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        it = self.inner.list(prefix, start_after=start_after)
        while True:
            with self._slots:
                key = next(it, None)
            if key is None:
                return
            yield key

    def delete(self, key: str) -> None:
        self._call(lambda: self.inner.delete(key))

    def is_transient(self, exc: BaseException) -> bool:
        return self.inner.is_transient(exc)

    def close(self) -> None:
        self.inner.close()
