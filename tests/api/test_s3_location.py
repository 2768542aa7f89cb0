"""`vfs.open("s3://BUCKET/PREFIX")`: a read-only view of a volume another store writes (lazy fetch into a
cache directory, `refresh`), and a writer holding the volume's lease (S3 on a moto server on 127.0.0.1,
through the fault proxy; no mount)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import vfs
from tests.backend.faultproxy import FaultProxy
from tests.sync.conftest import backend_of, encrypted, make_store, proxy, remote  # noqa: F401
from vfs.api.remote import RemoteVolume
from vfs.config import RemoteConfig, StoreConfig
from vfs.errors import (
    BackendError,
    BackendNotFound,
    KeyRequired,
    LeaseHeld,
    NotWritable,
    RemoteConflict,
    StoreError,
    StoreLocked,
    UsageError,
    WrongPassphrase,
)
from vfs.sync import lease

pytestmark = pytest.mark.s3


def password() -> str | None:
    return os.environ.get("VFS_PASSWORD")  # set when the test runs on an encrypted volume


def unlock() -> bytes:
    """`password()` as a passphrase source (asked only by an encrypted volume)."""
    return (password() or "").encode()


def writer_store(path: Path, to: RemoteConfig, config: StoreConfig | None = None) -> Path:
    """A store with the remote `to` (as `vfs init --remote` makes it), closed."""
    (make_store(path, to) if config is None else make_store(path, to, config)).close()
    return path


def published(tmp_path: Path, to: RemoteConfig, *writes: tuple[str, str]) -> Path:
    """The store `origin` of the remote `to`, which wrote each (path, text) in turn and synced them (it
    keeps the writer lease, as `vfs sync` does)."""
    origin = writer_store(tmp_path / "origin", to)
    with vfs.open(origin, writable=True, password=password()) as w:
        for path, text in writes:
            w.write_text(path, text)
        w.sync(progress=False)
    return origin


def view(of: RemoteConfig, cache: Path, **kwargs: object) -> vfs.Volume:
    return vfs.open(of.url, endpoint_url=of.endpoint_url, cache_dir=cache, password=password(),
                    **kwargs)  # type: ignore[arg-type]


def release(store: Path) -> None:
    """What `vfs lease release STORE` does."""
    from vfs.compose import open_repository
    from vfs.sync.remote import open_store_backend

    with open_repository(store, passphrase=unlock) as repo, \
            open_store_backend(repo) as backend:
        assert lease.WriterLease(repo.path, backend, repo.store_id).release()


def lease_state(of: RemoteConfig, store: Path) -> str:
    """The volume's lease as `vfs lease status` shows it, read with `store` (another store of the volume,
    which has its keys)."""
    from vfs.compose import open_repository

    with open_repository(store, lock=False, passphrase=unlock) as repo, \
            backend_of(of, repo) as backend:
        return str(lease.status(backend, lease.LocalLease())["state"])


@pytest.mark.slow
def test_a_read_only_view_sees_the_writers_data_and_history_and_refreshes(
    tmp_path: Path, remote: RemoteConfig,  # noqa: F811
) -> None:
    origin = writer_store(tmp_path / "origin", remote)
    with vfs.open(origin, writable=True, password=password()) as w:
        w.write_text("notes.txt", "first")
        w.write_text("notes.txt", "second")
        blob = os.urandom(200_000)
        w.write_bytes("data/blob", blob)
        w.snapshot("one")
        w.sync(progress=False)
        blob_hash, ref = w.hash("data/blob"), w.url("data/blob")
    cache = tmp_path / "cache"
    with view(remote, cache) as v:
        assert isinstance(v, RemoteVolume) and not v.writable and v.store == cache
        assert remote.url in repr(v)
        assert v.ls("") == ["data", "notes.txt"]
        assert v.read_text("notes.txt") == "second" and v.read_text("notes.txt@1") == "first"
        assert [x.version for x in v.versions("notes.txt")] == [1, 2]
        assert [s.name for s in v.snapshots()] == ["one"]
        assert v.hash("data/blob") == blob_hash and v.url("data/blob") == ref
        assert v.read_bytes(blob_hash) == v.read_bytes("data/blob")
        with v.open("notes.txt@2") as f:
            f.seek(3)
            assert f.read() == b"ond"
        assert v.get("notes.txt@1", tmp_path / "out.txt").read_text() == "first"
        assert v.refresh() is False  # nothing new

        with vfs.open(origin, writable=True, password=password()) as w:
            w.write_text("notes.txt", "third")
            w.write_text("new.txt", "new")
            w.sync(progress=False)
        assert v.read_text("notes.txt") == "second"  # the view shows the state it was refreshed to
        assert v.refresh() is True
        assert v.read_text("notes.txt") == "third" and v.read_text("new.txt") == "new"
        assert [x.version for x in v.versions("notes.txt")] == [1, 2, 3]
        assert [d.path for d in v.diff("one")] == ["new.txt", "notes.txt"]

        for write in (lambda: v.write_text("x", "y"), lambda: v.put("x", b"y"), lambda: v.snapshot("two"),
                      lambda: v.remove("notes.txt"), lambda: v.open("x", "wb"), lambda: v.mkdir("d"),
                      lambda: v.sync()):
            with pytest.raises(NotWritable, match=f"^{remote.url}"):
                write()
        with pytest.raises(PermissionError):
            v.write_bytes("new.txt", b"")
    # The cache is kept: a new view starts from it and pulls only what is newer.
    assert vfs.load(ref, location=remote.url, endpoint_url=remote.endpoint_url, cache_dir=cache,
                    password=password()) == blob
    with view(remote, cache) as again:
        assert again.read_text("new.txt") == "new"


@pytest.mark.slow
def test_a_writable_volume_waits_for_the_lease_and_publishes(tmp_path: Path, remote: RemoteConfig,  # noqa: F811
                                                              ) -> None:
    origin = published(tmp_path, remote, ("a.txt", "from the workstation"))
    cache = tmp_path / "cache"
    with pytest.raises(LeaseHeld, match=f"has another writer: the store {origin} on "):
        view(remote, cache, writable=True)
    with view(remote, cache) as v:  # the failed take left a usable read-only cache
        assert v.read_text("a.txt") == "from the workstation"

    release(origin)
    with view(remote, cache, writable=True) as w2:
        assert w2.writable and w2.read_text("a.txt") == "from the workstation"
        assert lease_state(remote, origin) == "held"
        w2.write_text("b.txt", "from the notebook")
        left = w2.sync(progress=False)
        assert left["backlog_objects"] == 0
        with view(remote, tmp_path / "reader") as r:
            assert r.read_text("b.txt") == "from the notebook"
            w2.write_text("c.txt", "published when closed")
            assert not r.refresh()
    assert lease_state(remote, origin) == "released"
    with view(remote, tmp_path / "reader") as r:
        assert r.read_text("c.txt") == "published when closed"
    # The workstation's store is behind the volume now: it cannot take the lease back and publish over it.
    with vfs.open(origin, writable=True, password=password()) as w:
        w.write_text("d.txt", "late")
        with pytest.raises(RemoteConflict):
            w.sync(progress=False)


@pytest.mark.slow
def test_a_writer_cache_with_unpublished_changes_is_not_pulled_into(tmp_path: Path, remote: RemoteConfig,  # noqa: F811
                                                                     ) -> None:
    origin = published(tmp_path, remote, ("a.txt", "1"))
    release(origin)
    cache = tmp_path / "cache"
    w2 = view(remote, cache, writable=True)
    w2.write_text("mine.txt", "unpublished")
    w2._repo.close()  # as if killed: nothing published, the lease kept
    with pytest.raises(StoreError, match="changes its remote lacks"):
        view(remote, cache)  # a follower would discard them
    with view(remote, cache, writable=True) as w3:  # the writer takes over where it stopped
        assert w3.read_text("mine.txt") == "unpublished"
    with view(remote, cache) as again:  # published: the cache can follow the volume again
        assert again.read_text("mine.txt") == "unpublished" and not again.refresh()
    with view(remote, tmp_path / "reader") as r:
        assert r.read_text("mine.txt") == "unpublished"


def test_a_range_read_fetches_only_the_packs_it_needs(
    tmp_path: Path, remote: RemoteConfig, proxy: FaultProxy,  # noqa: F811
) -> None:
    # Chunks of at most 256 KiB in packs of about 1 MiB: a pack holds at most 1.25 MiB.
    small = StoreConfig(chunk_min=64 << 10, chunk_avg=128 << 10, chunk_max=256 << 10, pack_target=1 << 20)
    origin = writer_store(tmp_path / "origin", remote, small)
    data = os.urandom(12 << 20)
    with vfs.open(origin, writable=True, password=password()) as w:
        w.write_bytes("big.bin", data)
        w.sync(progress=False)
    with view(remote, tmp_path / "cache") as v:
        proxy.forwarded.clear()
        with v.open("big.bin") as f:
            f.seek(7 << 20)
            assert f.read(1000) == data[7 << 20:(7 << 20) + 1000]
        gets = [p for m, p, status in proxy.forwarded if m == "GET" and "/packs/" in p]
        assert 1 <= len(gets) <= 2  # the pack (or two) holding those bytes, of some twelve
        kept = sum(f.stat().st_size for f in (tmp_path / "cache" / "packs").rglob("*") if f.is_file())
        assert kept <= 5 << 19  # whole packs today (two at most); single chunks once ranged reads are in


def test_bad_locations_say_what_is_wrong(tmp_path: Path, remote: RemoteConfig, s3_admin: object,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(BackendNotFound, match="holds no volume"):
        view(remote, cache)  # nothing synced there yet
    with pytest.raises(BackendError, match="bucket no-such-bucket-here does not exist"):
        view(RemoteConfig("s3://no-such-bucket-here/vol", remote.endpoint_url), cache)
    assert not cache.exists()  # nothing left behind
    with pytest.raises(UsageError, match="s3://BUCKET/PREFIX"):
        vfs.open("https://example.com/x", endpoint_url="http://127.0.0.1:1")
    with pytest.raises(UsageError, match="s3:// locations only"):
        vfs.open(tmp_path, cache_dir=cache)
    published(tmp_path, remote, ("a.txt", "1"))
    if password() is not None:
        with pytest.raises(WrongPassphrase):
            vfs.open(remote.url, endpoint_url=remote.endpoint_url, cache_dir=cache, password="wrong")
        with monkeypatch.context() as env, pytest.raises(KeyRequired):
            env.delenv("VFS_PASSWORD")  # the environment's passphrase source, which `encrypted` set
            vfs.open(remote.url, endpoint_url=remote.endpoint_url, cache_dir=cache)
        assert not cache.exists()
    other = tmp_path / "other-cache"
    with view(remote, other):
        pass
    with pytest.raises(UsageError, match="holds a store of"):
        vfs.open(remote.url + "x", endpoint_url=remote.endpoint_url, cache_dir=other, password=password())


def test_fsspec_reads_an_s3_location(tmp_path: Path, remote: RemoteConfig) -> None:  # noqa: F811
    import fsspec

    published(tmp_path, remote, ("results/run1.csv", "a,b\n1,2\n"), ("results/run1.csv", "a,b\n3,4\n"))
    options = {"location": remote.url, "endpoint_url": remote.endpoint_url, "cache_dir": str(tmp_path / "cache"),
               "password": password()}
    with fsspec.open("vfs://results/run1.csv@1", "rb", **options) as f:
        assert f.read() == b"a,b\n1,2\n"
    fs = fsspec.filesystem("vfs", **options)
    assert fs.cat_file("results/run1.csv", start=4) == b"3,4\n"
    assert fs.ls("results", detail=False) == ["results/run1.csv"]
    with pytest.raises(PermissionError):
        fs.pipe_file("results/x", b"no")


@pytest.mark.slow
def test_put_get_ls_of_an_s3_location_as_a_user_without_fuse(
    tmp_path: Path, remote: RemoteConfig, nobody_dir: Path,  # noqa: F811
) -> None:
    from tests.api.conftest import NOBODY
    from tests.api.test_cli import NO_FUSE, ROOT

    if subprocess.run([*NO_FUSE, "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot make a mount namespace here")
    origin = published(tmp_path, remote, ("exp/a.txt", "alpha"), ("exp/a.txt", "ALPHA"))
    release(origin)
    where = ["--store", remote.url, "--endpoint-url", str(remote.endpoint_url), "--cache-dir", "cache"]
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "VFS_PASSWORD"))}
    # /dev is empty there: no /dev/null for the config files the credentials fixture points at.
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(nobody_dir / "no-aws-config")

    def run(*args: str) -> str:
        done = subprocess.run([*NO_FUSE, *NOBODY, sys.executable, "-m", "vfs.cli.main", *args, *where],
                              cwd=nobody_dir, capture_output=True, text=True, timeout=120,
                              env={**env, "PYTHONPATH": ROOT, "HOME": str(nobody_dir), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    assert run("ls", "exp").split() == ["a.txt"]
    run("get", "exp/a.txt@1", "a-v1.txt")
    assert (nobody_dir / "a-v1.txt").read_text() == "alpha"
    subprocess.run([*NOBODY, "sh", "-c", "printf beta > b.txt"], cwd=nobody_dir, check=True)
    assert "1 created" in run("put", "b.txt", "exp")
    with view(remote, tmp_path / "reader") as r:
        assert r.read_text("exp/b.txt") == "beta"  # published, and the lease released
    assert lease_state(remote, origin) == "released"


@pytest.mark.slow
async def test_a_cache_a_follower_daemon_serves_is_read_through_it(tmp_path: Path, remote: RemoteConfig,  # noqa: F811
                                                                    ) -> None:
    """As under `vfs mount --follow`, without the kernel: the daemon's control server and follower task."""
    import trio

    from vfs.compose import open_follower_store
    from vfs.control.server import ControlServer
    from vfs.fs.filesystem import FileSystem
    from vfs.sync.follow import Follower
    from vfs.sync.remote import open_store_backend

    def publish(text: str) -> None:
        with vfs.open(origin, writable=True, password=password()) as w:
            w.write_text("a.txt", text)
            w.sync(progress=False)

    origin = writer_store(tmp_path / "origin", remote)
    await trio.to_thread.run_sync(publish, "one")
    cache = tmp_path / "cache"
    repo = await trio.to_thread.run_sync(lambda: open_follower_store(remote, cache, passphrase=unlock))
    fs = FileSystem(repo, read_only="a follower is read-only")
    with open_store_backend(repo) as backend:
        async with trio.open_nursery() as nursery:
            follower = Follower(repo, backend, interval=3600)
            await nursery.start(fs.run)
            await nursery.start(follower.run)
            await nursery.start(ControlServer(fs, None, follower=follower).run)

            def through_the_daemon() -> None:
                with pytest.raises(StoreLocked, match="the cache of a follower mount"):
                    view(remote, cache, writable=True)
                with view(remote, cache) as v:
                    assert v.mounted and v.read_text("a.txt") == "one"
                    publish("two")
                    assert v.refresh() is True  # the daemon pulled
                    assert v.read_text("a.txt") == "two"
                    with pytest.raises(NotWritable):
                        v.write_text("a.txt", "three")

            await trio.to_thread.run_sync(through_the_daemon)
            nursery.cancel_scope.cancel()
    await fs.close()
    repo.close()


@pytest.mark.slow
def test_a_writer_that_publishes_between_the_pull_and_the_take_is_caught_up_with(
    tmp_path: Path, remote: RemoteConfig, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    import vfs.api.remote as remote_api

    origin = writer_store(tmp_path / "origin", remote)

    def publish(text: str) -> None:
        with vfs.open(origin, writable=True, password=password()) as w:
            w.write_text("a.txt", text)
            w.sync(progress=False)
        release(origin)

    publish("one")
    real = remote_api.open_follower_store

    def then_the_workstation_publishes(*args: object, **kwargs: object) -> object:
        repo = real(*args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(remote_api, "open_follower_store", real)  # once
        publish("two")  # after the cache was brought up to date, before it takes the lease
        return repo

    monkeypatch.setattr(remote_api, "open_follower_store", then_the_workstation_publishes)
    with view(remote, tmp_path / "cache", writable=True) as w:
        assert w.read_text("a.txt") == "two"  # the first take was undone, the cache pulled again
        w.write_text("a.txt", "three")
    with view(remote, tmp_path / "reader") as r:
        assert [v.version for v in r.versions("a.txt")] == [1, 2, 3]
