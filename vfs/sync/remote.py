"""A store's remote: the one place that turns its `RemoteConfig` into an open backend.

Every caller that talks to a store's bucket (the uploader, lazy fetch, clone, fsck and gc) opens it
here, so the backend stack (retry outside, connection limit inside: `vfs.backend.open_backend`) and
the "no remote" error are written once. A remote a user gives (`vfs init --remote`, `vfs remote set`,
`vfs clone`) is checked here too: its URL before anything is written (`remote_config`), and that its
bucket answers (`check_reachable`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Protocol

from vfs.backend import Backend, RetryPolicy, check_url, open_backend
from vfs.config import RemoteConfig
from vfs.errors import BackendError, BackendNotFound, KeyRequired, UsageError
from vfs.store.keys import VolumeKeys
from vfs.sync import layout
from vfs.sync.sealed import sealing

log = logging.getLogger(__name__)

_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")  # botocore's own rule

# A check run by hand answers within seconds: a name that does not resolve or a port that refuses
# connections is reported after a few quick attempts, where the uploader retries for minutes (an outage
# it should outlast).
CHECK_RETRY = RetryPolicy(max_attempts=3, max_time=5.0, base_delay=0.25, max_delay=1.0)
CHECK_TIMEOUT = 5.0  # seconds to connect, and to wait for an answer


class _StoreWithRemote(Protocol):
    """What `require_remote` reads of a store (a Repository; not imported: it imports this layer)."""

    @property
    def path(self) -> Path: ...

    @property
    def remote(self) -> RemoteConfig | None: ...

    @property
    def encryption(self) -> dict[str, str] | None: ...

    @property
    def keys(self) -> VolumeKeys | None: ...


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
                        connect_timeout: float = 10.0, read_timeout: float = 60.0) -> Backend:
    """The backend `remote` names, wrapped for retries (`retry`, default `RetryPolicy()`).

    Raises:
        UsageError: a malformed remote URL.
        BackendError: the client cannot be set up.
    """
    return open_backend(remote.url, endpoint_url=remote.endpoint_url, region=remote.region, retry=retry,
                        connect_timeout=connect_timeout, read_timeout=read_timeout)


def open_store_backend(store: _StoreWithRemote, *, retry: RetryPolicy | None = None,
                       connect_timeout: float = 10.0, read_timeout: float = 60.0) -> Backend:
    """The store's remote (the options are `open_remote_backend`'s), sealing and opening what the sync
    layer sends and reads when the store is encrypted.

    Raises:
        UsageError: the store has no remote.
        KeyRequired: it is encrypted and was opened without its passphrase (nothing could be sealed).
    """
    remote = require_remote(store)
    require_keys(store)  # before anything is opened
    backend = open_remote_backend(remote, retry=retry, connect_timeout=connect_timeout, read_timeout=read_timeout)
    return sealed_for(store, backend)


def require_keys(store: _StoreWithRemote) -> None:
    """Raise KeyRequired if the store is encrypted and was opened without its passphrase."""
    if store.encryption is not None and store.keys is None:
        raise KeyRequired(f"store {store.path} is encrypted and was opened without its passphrase")


def sealed_for(store: _StoreWithRemote, backend: Backend) -> Backend:
    """`backend` as the store's sync must use it: sealing when the store is encrypted (as is when it is
    sealed already, or the store is plain). KeyRequired: see `require_keys`."""
    require_keys(store)
    return backend if store.keys is None else sealing(backend, store.keys)


def remote_config(url: str, endpoint_url: str | None = None, region: str | None = None) -> RemoteConfig:
    """The remote a user gave, checked without sending a request: one that passes can be opened.

    Raises:
        UsageError: a URL or endpoint URL no backend takes, or a remote only tests can use.
    """
    if url.startswith(("http://", "https://")):
        raise UsageError(f"remote must look like s3://BUCKET/PREFIX (or file:///PATH), not {url!r}; the address"
                         " of an S3-compatible server goes in --endpoint-url")
    if url.startswith("memory://"):  # each process would get a new, empty one
        raise UsageError(f"{url!r} lives only as long as one process (tests): give s3://BUCKET/PREFIX or file:///PATH")
    check_url(url, endpoint_url=endpoint_url)  # the one parser of remote URLs, open_backend's
    if region is not None and not _REGION.fullmatch(region):
        raise UsageError(f"region must look like eu-west-1 or garage, not {region!r}")
    return RemoteConfig(url, endpoint_url, region)


def check_reachable(remote: RemoteConfig, *, volume: bool = False) -> None:
    """Raise unless the remote's bucket answers a listing of its prefix within seconds; with `volume`,
    unless the prefix holds a volume (what `vfs clone` needs).

    Raises:
        BackendError: no such bucket, access denied (BackendDenied), no volume (BackendNotFound), or
            the endpoint did not answer a few quick attempts (BackendUnavailable); the message names the
            endpoint, and says how to give another when the default one (AWS) was used.
    """
    backend = open_remote_backend(remote, retry=CHECK_RETRY, connect_timeout=CHECK_TIMEOUT,
                                  read_timeout=CHECK_TIMEOUT)
    log.info("checking that %s answers", backend.url)
    try:
        with backend:
            for _ in backend.list():  # one page is enough: the bucket exists and lets us read it
                break
            if volume and backend.head(layout.CONFIG_KEY) is None:
                raise BackendNotFound(f"{backend.url} holds no volume (no {layout.CONFIG_KEY} object)")
    except BackendError as e:
        if remote.endpoint_url is None and remote.url.startswith("s3://"):
            raise type(e)(f"{e}; without --endpoint-url the bucket is looked for on AWS: give --endpoint-url URL"
                          " for an S3-compatible server (MinIO, Garage, Ceph)") from None
        raise
