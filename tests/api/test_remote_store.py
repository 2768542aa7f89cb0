"""A store with a remote, from Python: sync what the remote lacks, open a lazy clone, fetch part of it,
and load shared references there (S3 on a moto server on 127.0.0.1; no mount)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vfs
from tests.sync.conftest import encrypted, proxy, remote  # noqa: F401
from tests.sync.test_cli import init
from tests.sync.test_cli import vfs as run_vfs
from vfs.config import RemoteConfig

pytestmark = pytest.mark.s3


def test_sync_then_a_lazy_clone_fetches_what_is_asked_and_resolves_references(
    tmp_path: Path, remote: RemoteConfig,  # noqa: F811
) -> None:
    origin, lazy = tmp_path / "origin", tmp_path / "lazy"
    init(origin, remote)
    big = {f"f{i}": os.urandom(300_000) for i in range(4)}
    password = os.environ.get("VFS_PASSWORD")  # set when the test runs on an encrypted volume
    with vfs.open(origin, writable=True, password=password) as vol:
        for name, data in big.items():
            vol.write_bytes(f"data/{name}", data)
        vol.write_bytes("other/x", os.urandom(300_000))
        assert vol.status()["backlog_objects"]
        left = vol.sync(progress=False)
        assert left["backlog_objects"] == 0 and left["remote"] == remote.url
        ref = vol.url("data/f2")
    run_vfs("clone", remote.url, lazy, "--lazy", "--endpoint-url", str(remote.endpoint_url))
    assert not list((lazy / "packs").glob("*/*.pack"))
    with vfs.open(lazy, password=password) as clone:
        fetched = clone.fetch(["data"], progress=False)
        assert fetched > 0
        assert clone.read_bytes("data/f1") == big["f1"]
    assert vfs.load(ref, location=lazy, password=password) == big["f2"]  # the reference, resolved in another store
