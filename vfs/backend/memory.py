"""A backend in a dict: for tests, and as the reference the contract suite holds the others to."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

from vfs.backend.base import Backend, check_key, check_range
from vfs.errors import BackendNotFound


class MemoryBackend(Backend):
    """Objects in memory, gone when the backend is. Thread-safe."""

    _ids = itertools.count(1)

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name or next(self._ids)}"
        self._lock = threading.Lock()
        self._objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        data = bytes(data)  # a caller's bytearray or memoryview must not change what is stored
        with self._lock:
            self._objects[key] = data

    def put_if_absent(self, key: str, data: bytes) -> bool:
        check_key(key)
        data = bytes(data)
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = data
        return True

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            data = self._objects.get(key)
        if data is None:
            raise BackendNotFound(f"{self.url}: no object {key}")
        return data

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        check_range(offset, length)
        return self.get(key)[offset : offset + length]

    def head(self, key: str) -> int | None:
        check_key(key)
        with self._lock:
            data = self._objects.get(key)
        return None if data is None else len(data)

    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix) and k > start_after)
        # A snapshot taken under the lock, so that concurrent puts do not disturb the iteration.
        yield from keys

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)
