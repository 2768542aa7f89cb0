"""The object interface every remote speaks, and how its failures are classified.

An *object* is an immutable-once-written byte string stored under a *key*: a relative, `/`-separated
name such as `packs/ab/ab12...`. Keys are opaque to the backend (a slash makes no directory on S3);
the local backend maps them to paths. A backend is thread-safe and raises only `vfs.errors` classes:
`BackendNotFound` for a missing object, `BackendUnavailable` for anything worth retrying (timeouts,
resets, 5xx, throttling, truncated bodies) and `BackendError` otherwise. Retries, connection limits and
the like are wrappers (`vfs.backend.retry`, `vfs.backend.limits`), composed in `vfs.backend.open_backend`.

Bodies are returned whole and exactly as stored, or not at all: a short read is an error, never data.
Objects are content-addressed by their writers, who check each body against its hash after `get`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from vfs.errors import BackendError, UsageError


@dataclass(frozen=True)
class Failure:
    """A failure that lasts: requests have failed since `since_ns` (wall clock), `attempts` of them, and
    none has succeeded meanwhile; `message` is the newest one's error (it names the endpoint and the key).

    `permanent`: the newest error is one that retrying will not fix (no such bucket, access denied), so
    a command run by hand reports it at once instead of waiting out its timeout.
    """

    message: str
    since_ns: int
    attempts: int
    permanent: bool = False

    def then(self, message: str, *, permanent: bool = False) -> Failure:
        """This failure, gone on with one more failed attempt (whose error is `message`)."""
        return Failure(message, self.since_ns, self.attempts + 1, permanent)


class Backend(abc.ABC):
    """A flat namespace of objects; see the module docstring for the rules."""

    #: Where the objects live, for messages and logs (e.g. `s3://bucket/prefix at http://host:9000`).
    #: Never holds a credential.
    url: str

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing any object there; atomic (readers see old or new, whole)."""

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store `data` under `key` only if no object is there; True if stored, False if one was.

        On S3 this is a PUT with `If-None-Match: *`, which some S3-compatible servers (Garage) accept
        and ignore: they store the object whatever is there and answer True. Callers that rely on it
        probe the endpoint first (`vfs.sync.lease.honours_conditional_put`). A retried request whose
        first answer was lost may answer False for an object it stored itself: callers read it back.
        """
        raise NotImplementedError(f"{type(self).__name__} has no conditional put")

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object under `key`.

        Raises:
            BackendNotFound: no object has that key.
        """

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset+length) of the object, short only where the object ends.

        Raises:
            BackendNotFound: no object has that key.
        """

    @abc.abstractmethod
    def head(self, key: str) -> int | None:
        """The size of the object under `key`, or None if there is none."""

    @abc.abstractmethod
    def list(self, prefix: str = "", *, start_after: str = "") -> Iterator[str]:
        """Keys that start with `prefix` (a plain string prefix, not a folder), ascending.

        With `start_after`, only keys greater than it: a caller (the retry wrapper) resumes an
        interrupted listing this way.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object under `key`; removing a missing object is not an error."""

    def is_transient(self, exc: BaseException) -> bool:
        """Whether retrying the request that raised `exc` may succeed."""
        return is_transient(exc)

    def failure(self) -> Failure | None:
        """The failure requests have met since the last one succeeded, or None (kept by the retry wrapper)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing to release
        """Release connections and descriptors; the backend is unusable afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a failure worth retrying: a `BackendError` that says so (`BackendUnavailable`)."""
    return isinstance(exc, BackendError) and exc.transient


def check_key(key: str) -> str:
    """`key` if it is a valid object key; else UsageError.

    Valid: non-empty `/`-separated segments, none of them `.` or `..`, no NUL or backslash, at most
    1,000 bytes in UTF-8 (S3's limit is 1,024, leaving room for a prefix).
    """
    if not isinstance(key, str) or not key:
        raise UsageError(f"object key must be a non-empty string, not {key!r}")
    if "\0" in key or "\\" in key or len(key.encode()) > 1000:
        raise UsageError(f"invalid object key {key!r}: NUL, backslash or longer than 1000 bytes")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise UsageError(f"invalid object key {key!r}: empty, '.' or '..' path segment")
    return key


def check_range(offset: int, length: int) -> None:
    """UsageError unless `offset` and `length` are non-negative."""
    if offset < 0:
        raise UsageError(f"offset must be non-negative, not {offset}")
    if length < 0:
        raise UsageError(f"length must be non-negative, not {length}")
