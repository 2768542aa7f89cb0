"""Encrypted volumes end to end through the real `vfs` CLI against moto (issue 11): what the bucket
holds, tampering, wrong passphrases, and `vfs key`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backend.faultproxy import FaultProxy
from tests.sync.conftest import backend_of, pack_puts
from vfs.catalog.catalog import CATALOG_FILE
from vfs.config import RemoteConfig
from vfs.repository import Repository
from vfs.sync import checkpoint, layout
from vfs.types import ROOT_INO

pytestmark = pytest.mark.s3
VFS = [sys.executable, "-m", "vfs.cli.main"]
PASS = "the passphrase of the tests"
WRONG = 7  # exit code of a wrong passphrase


def vfs(*args: str | Path, passphrase: str | None = PASS, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VFS_PASSWORD")}
    if passphrase is not None:
        env["VFS_PASSWORD"] = passphrase
    done = subprocess.run([*VFS, *map(str, args)], capture_output=True, text=True, timeout=180, env=env,
                          stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"vfs {' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    assert "Traceback" not in done.stderr and PASS not in done.stdout + done.stderr
    return done


def cat(store: Path, path: str) -> subprocess.CompletedProcess[bytes]:
    """`vfs cat` with its output as bytes (stderr decoded)."""
    done = subprocess.run([*VFS, "cat", "--store", str(store), path], capture_output=True, timeout=180,
                          env={**os.environ, "VFS_PASSWORD": PASS}, stdin=subprocess.DEVNULL)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, done.stderr.decode())  # type: ignore[arg-type]


def one_line_error(done: subprocess.CompletedProcess[str], code: int, match: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfs: error: ") and match in lines[0], done.stderr


@pytest.fixture
def remote(s3_bucket: str, proxy: FaultProxy) -> RemoteConfig:
    return RemoteConfig(f"s3://{s3_bucket}/enc", proxy.url)


def remote_args(remote: RemoteConfig) -> list[str]:
    return ["--remote", remote.url, "--endpoint-url", str(remote.endpoint_url)]


def clone_args(remote: RemoteConfig, dest: Path) -> list[str]:
    return ["clone", remote.url, dest, "--endpoint-url", str(remote.endpoint_url)]


def write_files(store: Path, files: dict[bytes, bytes]) -> None:
    with Repository.open(store, passphrase=PASS.encode) as repo:
        folder = repo.catalog.create(ROOT_INO, b"secret-folder-name", 0o40755, 0, 0).ino
        for name, data in files.items():
            repo.commit_bytes(repo.catalog.create(folder, name, 0o100644, 0, 0).ino, data)
        repo.catalog.create_snapshot("snapshot-marker-name")


def marked_files() -> dict[bytes, bytes]:
    text = b"".join(b"MARKER-CONTENT %d of the file, compressible words words words\n" % i for i in range(40_000))
    return {b"marker-name-small.txt": b"MARKER-CONTENT small\n", b"marker-name-text.txt": text,
            b"marker-name-mixed.bin": random.Random(1).randbytes(700_000) + text[:300_000]}


def synced_volume(tmp_path: Path, remote: RemoteConfig) -> Path:
    store = tmp_path / "a"
    vfs("init", store, "--encrypt", *remote_args(remote))
    write_files(store, marked_files())
    vfs("sync", "--wait", "--store", store)
    return store


def bucket_objects(remote: RemoteConfig) -> dict[str, bytes]:
    with backend_of(remote) as backend:
        return {key: backend.get(key) for key in backend.list()}


def test_the_bucket_holds_no_content_name_or_plain_hash(tmp_path: Path, remote: RemoteConfig) -> None:
    store = synced_volume(tmp_path, remote)
    objects = bucket_objects(remote)
    assert {k.split("/")[0] for k in objects} == {"config", "keys", "packs", "catalog", "leases"}
    assert not any(k.startswith("leases/") and objects[k][5] != 1 for k in objects)  # lease claims are sealed
    with Repository.open(store, lock=False) as repo:
        hashes = {row[0] for row in repo.catalog._db.execute("SELECT id FROM chunks")}
        hashes |= {row[0] for row in repo.catalog._db.execute("SELECT hash FROM versions")}
    assert len(hashes) >= 5
    forbidden = [b"MARKER-CONTENT", b"marker-name", b"secret-folder-name", b"snapshot-marker-name", b"compressible",
                 *hashes, *(h.hex().encode() for h in hashes)]
    everything = b"".join(objects.values()) + "".join(objects).encode()
    for needle in forbidden:
        assert needle not in everything, needle
    # Each chunk id and content hash, as the bucket's owner could compute it from a known file.
    assert not any(h.hex() in key for key in objects for h in hashes)
    # The store's own packs are the same sealed bytes (the catalog is not: it stays on the user's disk).
    local = b"".join(p.read_bytes() for p in (store / "packs").rglob("*.pack"))
    assert b"MARKER-CONTENT" not in local and not any(h in local for h in hashes)
    # ... and a clone with the passphrase reads it all back.
    copy = tmp_path / "copy"
    vfs(*clone_args(remote, copy))
    for name, data in marked_files().items():
        assert cat(copy, "/secret-folder-name/" + name.decode()).stdout == data


def test_a_publish_killed_before_its_pointer_is_not_taken_for_a_rollback(tmp_path: Path, remote: RemoteConfig) -> None:
    store = synced_volume(tmp_path, remote)
    old = checkpoint.Manifest.load(store)
    assert old is not None
    with backend_of(remote) as backend:
        old_pointer = backend.get(layout.LATEST_KEY)
    with Repository.open(store, passphrase=PASS.encode) as repo:
        repo.commit_bytes(repo.catalog.create(ROOT_INO, b"later", 0o100644, 0, 0).ino, b"a later file")
    vfs("sync", "--wait", "--store", store)
    # What a kill between saving the manifest and putting the pointer leaves (seen in CI: a killed gc).
    with backend_of(remote) as backend:
        backend.put(layout.LATEST_KEY, old_pointer)
    manifest = checkpoint.Manifest.load(store)
    assert manifest is not None and manifest.seq > old.seq
    manifest.replaces = old.head()
    manifest.save(store)
    done = vfs("fsck", store, "--remote", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    # The same pointer without that record is a rollback.
    manifest.replaces = None
    manifest.save(store)
    done = vfs("fsck", store, "--remote", check=False)
    assert done.returncode == 1 and "rolled back" in done.stdout + done.stderr, done.stdout + done.stderr


def test_damage_in_the_bucket_is_detected_and_never_served(tmp_path: Path, remote: RemoteConfig) -> None:
    store = synced_volume(tmp_path, remote)
    with backend_of(remote) as backend:
        old_pointer = backend.get(layout.LATEST_KEY)
    with Repository.open(store, passphrase=PASS.encode) as repo:
        repo.commit_bytes(repo.catalog.create(ROOT_INO, b"later", 0o100644, 0, 0).ino, b"a later file")
    vfs("sync", "--wait", "--store", store)
    assert vfs("fsck", store, "--remote", "--read-data").returncode == 0
    with backend_of(remote) as backend:
        new_pointer = backend.get(layout.LATEST_KEY)
        packs = sorted(k for k in backend.list("packs/"))
        assert len(packs) >= 2
        first, second = backend.get(packs[0]), backend.get(packs[1])
        backend.put(packs[0], second)  # swapped: each under the other's name
        backend.put(packs[1], first)
        backend.put(layout.LATEST_KEY, old_pointer)  # replayed: an older, authentic pointer put back
    done = vfs("fsck", store, "--remote", "--read-data", check=False)
    report = done.stdout + done.stderr
    assert done.returncode == 1 and packs[0] in report and packs[1] in report and "rolled back" in report, report
    one_line_error(vfs("sync", "--wait", "--store", store, check=False), 6, "rolled back")
    # A lazy clone follows the (old) pointer but never serves a damaged pack's bytes.
    with backend_of(remote) as backend:
        backend.put(packs[0], first)
        flipped = bytearray(second)
        flipped[len(flipped) // 2] ^= 1
        backend.put(packs[1], bytes(flipped))
        pointer = bytearray(old_pointer)
        pointer[-5] ^= 1
        backend.put(layout.LATEST_KEY, bytes(pointer))
    one_line_error(vfs(*clone_args(remote, tmp_path / "c1"), check=False), 3,
                   f"{layout.LATEST_KEY}: fails authentication")
    assert not (tmp_path / "c1" / CATALOG_FILE).exists()
    with backend_of(remote) as backend:
        backend.put(layout.LATEST_KEY, old_pointer)
        # A truncated checkpoint object: named in one line.
        chain_key = next(k for k in backend.list("catalog/") if k != layout.LATEST_KEY)
        whole = backend.get(chain_key)
        backend.put(chain_key, whole[:-20])
    one_line_error(vfs(*clone_args(remote, tmp_path / "c2"), check=False), 3, chain_key)
    with backend_of(remote) as backend:
        backend.put(chain_key, whole)
        backend.put(layout.LATEST_KEY, new_pointer)
    vfs(*clone_args(remote, tmp_path / "c3"), "--lazy")
    expected = {"/secret-folder-name/" + name.decode(): data for name, data in marked_files().items()}
    expected["/later"] = b"a later file"
    bad = 0
    for path, data in expected.items():
        done = cat(tmp_path / "c3", path)
        if done.returncode != 0:
            one_line_error(done, 3, packs[1])  # type: ignore[arg-type]
            bad += 1
        else:
            assert done.stdout == data
    assert bad >= 1


def test_a_wrong_passphrase_is_exit_7_and_writes_nothing(tmp_path: Path, remote: RemoteConfig) -> None:
    store = synced_volume(tmp_path, remote)
    before = bucket_objects(remote)
    copy = tmp_path / "copy"
    one_line_error(vfs(*clone_args(remote, copy), passphrase="wrong", check=False), WRONG, "wrong passphrase")
    assert not copy.exists()
    one_line_error(vfs("sync", "--wait", "--store", store, passphrase="wrong", check=False), WRONG, "wrong passphrase")
    one_line_error(vfs("cat", "--store", store, "/secret-folder-name/marker-name-small.txt", passphrase="wrong",
                       check=False), WRONG, "wrong passphrase")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    one_line_error(vfs("mount", store, mnt, passphrase="wrong", check=False), WRONG, "wrong passphrase")
    assert not os.path.ismount(mnt)
    # No source at all, and no terminal: KeyRequired (exit 7), saying where a passphrase can come from.
    one_line_error(vfs("cat", "--store", store, "/secret-folder-name/marker-name-small.txt", passphrase=None,
                       check=False), WRONG, "VFS_PASSWORD")
    assert bucket_objects(remote) == before


def test_keys_are_added_changed_and_removed_without_uploading_data(tmp_path: Path, remote: RemoteConfig,
                                                                    proxy: FaultProxy) -> None:
    store = synced_volume(tmp_path, remote)
    puts = len(pack_puts(proxy))
    [first] = key_ids(store)
    second = tmp_path / "second"
    second.write_text("the second passphrase\n")
    vfs("key", "add", "--store", store, "--new-password-file", second)
    [added] = key_ids(store) - {first}
    vfs(*clone_args(remote, tmp_path / "c1"), passphrase="the second passphrase")
    key_file = tmp_path / "machine.key"
    vfs("key", "passwd", "--store", store, "--new-key-file", key_file)  # opened with PASS: replaces `first`
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    [from_file] = key_ids(store) - {added}
    assert first not in key_ids(store)
    one_line_error(vfs(*clone_args(remote, tmp_path / "c2"), check=False), WRONG, "wrong passphrase")
    vfs(*clone_args(remote, tmp_path / "c3"), "--key-file", key_file, passphrase=None)
    one_line_error(vfs("key", "remove", from_file, "--store", store, "--key-file", key_file, passphrase=None,
                       check=False), 2, "your passphrase opened")
    vfs("key", "remove", added, "--store", store, "--key-file", key_file, passphrase=None)
    one_line_error(vfs(*clone_args(remote, tmp_path / "c4"), passphrase="the second passphrase", check=False),
                   WRONG, "wrong passphrase")
    one_line_error(vfs("key", "remove", from_file, "--store", store, "--key-file", key_file, passphrase=None,
                       check=False), 2, "last key")
    assert key_ids(store) == {from_file}
    assert len(pack_puts(proxy)) == puts  # no key change re-uploads a pack


def key_ids(store: Path) -> set[str]:
    return {k["id"] for k in json.loads(vfs("key", "list", "--store", store, "--json", passphrase=None).stdout)["keys"]}


def test_remote_set_encrypt_seals_a_plain_store_before_its_first_sync(tmp_path: Path, remote: RemoteConfig) -> None:
    store = tmp_path / "a"
    vfs("init", store, passphrase=None)
    with Repository.open(store) as repo:  # plain: no passphrase needed
        folder = repo.catalog.create(ROOT_INO, b"secret-folder-name", 0o40755, 0, 0).ino
        for name, data in marked_files().items():
            repo.commit_bytes(repo.catalog.create(folder, name, 0o100644, 0, 0).ino, data)
    # Interrupted after the first step: the store is encrypted, its old packs are not sealed yet, and
    # nothing plain may reach the bucket.
    from vfs.maintenance import encrypt

    with Repository.open(store) as repo:
        encrypt.begin(repo, PASS.encode())
        repo.catalog.set_meta("remote", remote.to_json())
    one_line_error(vfs("sync", "--wait", "--quiet", "--timeout", "10", "--store", store, check=False), 5, "not sealed")
    assert not [k for k in bucket_objects(remote) if k.startswith("packs/")]
    done = vfs("remote", "set", store, *remote_args(remote)[1:], "--encrypt")
    assert "sealed" in done.stderr
    headers = {p.read_bytes()[:10] for p in (store / "packs").rglob("*.pack")}
    assert headers == {b"VFSPACK\0\x02\x01"}
    vfs("sync", "--wait", "--store", store)
    everything = b"".join(bucket_objects(remote).values())
    assert b"MARKER-CONTENT" not in everything and b"marker-name" not in everything
    copy = tmp_path / "copy"
    vfs(*clone_args(remote, copy))
    for name, data in marked_files().items():
        assert cat(copy, "/secret-folder-name/" + name.decode()).stdout == data
    # Once synced, a plain store is not encrypted in place: its plain objects would stay in the bucket.
    plain = tmp_path / "plain"
    other = RemoteConfig(remote.url + "-plain", remote.endpoint_url)
    vfs("init", plain, *remote_args(other), passphrase=None)
    write_plain = Repository.open(plain)
    write_plain.commit_bytes(write_plain.catalog.create(ROOT_INO, b"f", 0o100644, 0, 0).ino, b"plain data")
    write_plain.close()
    vfs("sync", "--wait", "--store", plain, passphrase=None)
    one_line_error(vfs("remote", "set", plain, *remote_args(other)[1:], "--encrypt", check=False), 2,
                   "has synced to its remote already")
    with Repository.open(plain, lock=False) as repo:
        assert repo.encryption is None


@pytest.mark.fuse
def test_the_mount_daemon_gets_the_passphrase_by_pipe_not_argv_or_environ(tmp_path: Path) -> None:
    store, mnt, secret = tmp_path / "s", tmp_path / "mnt", tmp_path / "pw"
    mnt.mkdir()
    secret.write_text(PASS + "\n")
    vfs("init", store, "--encrypt", "--password-file", secret, passphrase=None)
    vfs("mount", store, mnt, "--password-file", secret, passphrase=None)
    try:
        (mnt / "f").write_bytes(b"through an encrypted mount")
        pid = int((store / "lock").read_text())
        for what in ("cmdline", "environ"):
            assert PASS.encode() not in Path(f"/proc/{pid}/{what}").read_bytes(), what
    finally:
        vfs("umount", mnt, passphrase=None)
    assert cat(store, "/f").stdout == b"through an encrypted mount"
