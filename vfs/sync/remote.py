"""A store's remote: the one place that turns its `RemoteConfig` into an open backend.

Every caller that talks to a store's bucket (the uploader, lazy fetch, clone, fsck and gc) opens it
here, so the backend stack (retry outside, connection limit inside: `vfs.backend.open_backend`) and
the "no remote" error are written once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from vfs.backend import Backend, RetryPolicy, open_backend
from vfs.config import RemoteConfig
from vfs.errors import UsageError


class _StoreWithRemote(Protocol):
    """What `require_remote` reads of a store (a Repository; not imported: it imports this layer)."""

    @property
    def path(self) -> Path: ...

    @property
    def remote(self) -> RemoteConfig | None: ...


def require_remote(store: _StoreWithRemote) -> RemoteConfig:
    """The store's remote.

    Raises:
        UsageError: the store has none (the message says how to set one).
    """
    if store.remote is None:
        raise no_remote(store.path)
    return store.remote


def no_remote(store: Path) -> UsageError:
    """The error of a request that needs a remote, made on a store without one."""
    return UsageError(f"store {store} has no remote; set one with 'vfs remote set'")


def open_remote_backend(remote: RemoteConfig, *, retry: RetryPolicy | None = None,
                        connect_timeout: float = 10.0) -> Backend:
    """The backend `remote` names, wrapped for retries (`retry`, default `RetryPolicy()`).

    Raises:
        UsageError: a malformed remote URL.
        BackendError: the client cannot be set up.
    """
    return open_backend(remote.url, endpoint_url=remote.endpoint_url, region=remote.region, retry=retry,
                        connect_timeout=connect_timeout)
