"""One line, never a traceback: wrong arguments and failing remotes through the real `vfs` command.

Each case checks the exit code (README's table, from vfs/errors.py), that stderr is the one line
`vfs: error: ...`, and that nothing was written: the store is unchanged, or no store was made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backend.faultproxy import FaultProxy
from tests.cli.conftest import Volume
from tests.fuse.conftest import Mount, new_mount
from tests.s3_server import free_port
from tests.sync.conftest import proxy  # noqa: F401
from vfs.repository import Repository

VFS = [sys.executable, "-m", "vfs.cli.main"]
USAGE, STORE, BACKEND = 2, 3, 5  # exit codes (vfs.errors)


def vfs(*args: str | bytes | Path, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    arg_bytes = [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    return subprocess.run([*map(os.fsencode, VFS), *arg_bytes], capture_output=True, text=True, errors="replace",
                          timeout=timeout, env=env)


def fails(code: int, *args: str | bytes | Path, match: str = "", env: dict[str, str] | None = None) -> str:
    """Run `vfs ARGS`: it must exit `code` with one line `vfs: error: ...` (containing `match`) on stderr."""
    done = vfs(*args, env=env)
    err = done.stderr
    assert done.returncode == code, (done.returncode, err)
    assert "Traceback" not in err, err
    assert err.startswith("vfs: error: ") and err.count("\n") == 1, err
    assert match in err, err
    return err


def state(store: Path) -> object:
    """What a refused command must leave as it was: commits, snapshots, the remote and the cache size."""
    with Repository.open(store, lock=False) as repo:
        c = repo.catalog
        return (c.head().no, [(s.name, s.commit_no) for s in c.snapshots()], c.meta_or_none("remote"),
                c.meta_or_none("cache_size"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """An unmounted store holding a file `f` (one version) and a snapshot."""
    path = tmp_path / "store"
    Repository.init(path).close()
    Volume(path).write("f", b"one")
    assert vfs("snapshot", "create", "snap", "--store", path).returncode == 0
    yield path


# Each: the arguments after `vfs` (STORE stands for the store's path), the exit code, what the message says.
REFUSED = [
    (["prune", "--keep-within", "2x"], USAGE, "argument --keep-within: duration '2x'"),
    (["prune", "--keep-within", "abc"], USAGE, "argument --keep-within"),
    (["prune", "--keep-versions-within", "99999999999y"], USAGE, "longer than any store"),
    (["prune", "--keep-last", "-1"], USAGE, "--keep-last must be non-negative"),
    (["sync", "--timeout", "nan"], USAGE, "argument --timeout"),
    (["sync", "--timeout", "inf"], USAGE, "argument --timeout"),
    (["sync", "--timeout", "0"], USAGE, "argument --timeout"),
    (["sync", "--wait", "--timeout", "-1"], USAGE, "argument --timeout"),
    (["mount", "--version-interval", "-5", "STORE", "MNT"], USAGE, "argument --version-interval"),
    (["mount", "--version-interval", "nan", "STORE", "MNT"], USAGE, "argument --version-interval"),
    (["cat", "f@9999999999999999999"], USAGE, "not a snapshot name or a valid time"),
    (["cat", "f@0001-01-01"], USAGE, "not a snapshot name or a valid time"),
    (["cat", "f@-99999999999y"], USAGE, "not a snapshot name or a valid time"),
    (["log", "--since", "0001-01-01", "f"], USAGE, "--since"),
    (["restore", "f@9999999999999999999"], USAGE, "not a snapshot name or a valid time"),
    (["snapshot", "create", b"\xff"], USAGE, "not valid UTF-8"),
    (["remote", "set", "STORE", "ftp://x"], USAGE, "unknown remote 'ftp://x'"),
    (["remote", "set", "STORE", "http://x/y"], USAGE, "--endpoint-url"),
    (["remote", "set", "STORE", "bkt/p"], USAGE, "unknown remote 'bkt/p'"),
    (["remote", "set", "STORE", "memory://x"], USAGE, "one process"),
    (["remote", "set", "STORE", "s3://b/p", "--endpoint-url", "ftp://x"], USAGE, "endpoint URL must look like"),
    (["remote", "set", "STORE", "s3://b/p", "--endpoint-url", "http://h:99999"], USAGE, "endpoint URL"),
    (["remote", "set", "STORE", "s3://b/p", "--no-check", "--cache-size", "lots"], USAGE, "size must look like"),
    (["clone", "s3://b/p", "NEW", "--jobs", "0"], USAGE, "--jobs"),
    (["clone", "http://x/y", "NEW"], USAGE, "--endpoint-url"),
]


@pytest.mark.parametrize(("args", "code", "match"), REFUSED, ids=[
    " ".join(a if isinstance(a, str) else repr(a) for a in args) for args, _, _ in REFUSED])
def test_a_wrong_argument_is_one_line_and_changes_nothing(
    store: Path, tmp_path: Path, args: list[str | bytes], code: int, match: str,
) -> None:
    where = {"STORE": str(store), "MNT": str(tmp_path / "mnt"), "NEW": str(tmp_path / "new")}
    argv = [where.get(a, a) if isinstance(a, str) else a for a in args]
    if args[0] in ("prune", "sync", "cat", "log", "restore", "snapshot"):
        argv += ["--store", str(store)]
    before = state(store)
    fails(code, *argv, match=match)
    assert state(store) == before
    assert not (tmp_path / "new").exists() and not (tmp_path / "mnt").exists()


INIT_REFUSED = [
    (["--remote", "bkt/p"], USAGE, "unknown remote 'bkt/p'"),
    (["--remote", "http://x/y"], USAGE, "--endpoint-url"),
    (["--remote", "ftp://x"], USAGE, "unknown remote"),
    (["--remote", "s3://b/p", "--endpoint-url", "x"], USAGE, "endpoint URL must look like"),
    (["--remote", "s3://b/p", "--no-check", "--cache-size", "lots"], USAGE, "size must look like"),
]


@pytest.mark.parametrize(("args", "code", "match"), INIT_REFUSED, ids=[" ".join(a) for a, _, _ in INIT_REFUSED])
def test_init_refuses_a_malformed_remote_before_making_the_store(
    tmp_path: Path, args: list[str], code: int, match: str,
) -> None:
    fails(code, "init", tmp_path / "s", *args, match=match)
    assert not (tmp_path / "s").exists()


def test_init_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "FILE").write_bytes(b"")
    fails(STORE, "init", tmp_path / "FILE" / "sub", match="is not a directory")
    fails(STORE, "init", tmp_path / "FILE", match="not an empty directory")
    assert (tmp_path / "FILE").read_bytes() == b""


# -- remotes that do not answer, or refuse ------------------------------------------------------------
def closed_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused


@pytest.mark.s3
@pytest.mark.usefixtures("s3_credentials")
@pytest.mark.parametrize("command", ["init", "remote", "clone"])
def test_an_endpoint_that_refuses_connections_fails_fast_naming_it(tmp_path: Path, command: str) -> None:
    endpoint = closed_endpoint()
    new = tmp_path / "new"
    remote = ["s3://bkt/p", "--endpoint-url", endpoint]
    argv = {"init": ["init", new, "--remote", *remote], "clone": ["clone", *remote[:1], new, *remote[1:]],
            "remote": ["remote", "set", tmp_path / "store", *remote]}[command]
    if command == "remote":
        Repository.init(tmp_path / "store").close()
    t0 = time.monotonic()
    fails(BACKEND, *argv, match=endpoint.removeprefix("http://"))
    assert time.monotonic() - t0 < 30
    assert not new.exists()
    if command == "remote":
        assert state(tmp_path / "store")[2] is None  # no remote set


@pytest.mark.s3
@pytest.mark.usefixtures("s3_credentials")
def test_clone_without_endpoint_says_it_tried_aws_and_fails_fast(tmp_path: Path) -> None:
    # botocore's own setting for where "AWS" is, pointed at a closed port: no request leaves the machine.
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": closed_endpoint()}
    t0 = time.monotonic()
    err = fails(BACKEND, "clone", "s3://bkt/p", tmp_path / "new", env=env, match="at AWS (")
    assert "--endpoint-url" in err and env["AWS_ENDPOINT_URL_S3"].removeprefix("http://") in err
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "new").exists()


@pytest.mark.s3
def test_a_missing_bucket_is_refused_at_init_remote_set_and_clone(tmp_path: Path, moto_endpoint: str,
                                                                  s3_bucket: str) -> None:
    missing = ["s3://no-such-bucket-here/p", "--endpoint-url", moto_endpoint]
    fails(BACKEND, "init", tmp_path / "a", "--remote", *missing, match="bucket no-such-bucket-here does not exist")
    assert not (tmp_path / "a").exists()
    Repository.init(tmp_path / "b").close()
    fails(BACKEND, "remote", "set", tmp_path / "b", *missing, match="does not exist")
    assert state(tmp_path / "b")[2] is None
    fails(BACKEND, "clone", missing[0], tmp_path / "c", *missing[1:], match="does not exist")
    fails(BACKEND, "clone", f"s3://{s3_bucket}/empty", tmp_path / "c", "--endpoint-url", moto_endpoint,
          match="holds no volume")
    assert not (tmp_path / "c").exists()
    # --no-check: a bucket to be made later.
    assert vfs("init", tmp_path / "a", "--remote", *missing, "--no-check").returncode == 0
    assert vfs("remote", "set", tmp_path / "b", *missing, "--no-check").returncode == 0


@pytest.mark.s3
def test_access_denied_is_refused_at_init(tmp_path: Path, s3_bucket: str, proxy: FaultProxy) -> None:  # noqa: F811
    proxy.status = 403
    fails(BACKEND, "init", tmp_path / "a", "--remote", f"s3://{s3_bucket}/p", "--endpoint-url", proxy.url,
          match="access denied")
    assert not (tmp_path / "a").exists()


def _store_on_a_missing_bucket(tmp_path: Path, endpoint: str) -> tuple[str, ...]:
    return ("--remote", "s3://no-such-bucket-here/p", "--endpoint-url", endpoint, "--no-check")


@pytest.mark.s3
def test_sync_to_a_missing_bucket_fails_at_once_and_status_shows_it(tmp_path: Path,
                                                                     moto_endpoint: str) -> None:
    store = tmp_path / "s"
    assert vfs("init", store, *_store_on_a_missing_bucket(tmp_path, moto_endpoint)).returncode == 0
    Volume(store).write("f", b"data")
    for wait in ([], ["--wait", "--timeout", "120"]):
        t0 = time.monotonic()
        fails(BACKEND, "sync", "--store", store, *wait, match="does not exist")
        assert time.monotonic() - t0 < 30
    done = vfs("status", "--store", store, "--json")
    st = json.loads(done.stdout)
    assert done.returncode == 0 and "does not exist" in st["error"] and st["error_permanent"] is True, st


@pytest.mark.s3
@pytest.mark.fuse
def test_mounted_sync_to_a_missing_bucket_fails_at_once(tmp_path: Path, moto_endpoint: str) -> None:
    with new_mount(tmp_path, *_store_on_a_missing_bucket(tmp_path, moto_endpoint)) as m:
        (m.path / "f").write_bytes(b"data")
        t0 = time.monotonic()
        fails(BACKEND, "sync", "--wait", "--timeout", "120", "--mount", m.path, match="does not exist")
        assert time.monotonic() - t0 < 60
        st = json.loads(vfs("status", "--mount", m.path, "--json").stdout)
        assert "does not exist" in st["error"] and st["error_permanent"] is True, st
        m.stop()


# -- a store without a remote: not an error to ask about, mounted or not ---------------------------------
@pytest.mark.fuse
def test_status_and_fetch_of_a_store_without_remote_agree_mounted_or_not(mount: Mount) -> None:
    (mount.path / "f").write_bytes(b"data")
    for where in (["--mount", str(mount.path)], ["--store", str(mount.store)]):
        if where[0] == "--store":
            mount.stop()
        done = vfs("status", *where)
        assert (done.returncode, done.stdout, done.stderr) == (0, "no remote\n", ""), done
        st = json.loads(vfs("status", *where, "--json").stdout)
        assert st["remote"] is None and st["mounted"] == (where[0] == "--mount"), st
        args = [str(mount.path / "f")] if where[0] == "--mount" else ["--store", str(mount.store), "f"]
        done = vfs("fetch", *args)
        assert done.returncode == 0 and "no remote" in done.stdout and "fetched" not in done.stdout, done
        answer = json.loads(vfs("fetch", *args, "--json").stdout)  # stdout stays JSON
        assert answer["bytes_fetched"] == 0 and answer["stores_without_remote"] == [str(mount.store)], answer


@pytest.mark.fuse
def test_specs_through_a_mount_are_one_line(mount: Mount) -> None:
    f = mount.path / "f"
    f.write_bytes(b"data")
    for args, match in [
        (["cat", f"{f}@9999999999999999999"], "not a snapshot name"),
        (["cat", f"{f}@0001-01-01"], "not a snapshot name"),
        (["log", "--since", "0001-01-01", str(f)], "--since"),
        (["restore", f"{f}@9999999999999999999"], "not a snapshot name"),
        (["snapshot", "create", b"\xff", "--mount", str(mount.path)], "not valid UTF-8"),
    ]:
        fails(USAGE, *args, match=match)
    assert json.loads(vfs("snapshot", "list", "--mount", mount.path, "--json").stdout) == []
