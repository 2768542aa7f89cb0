"""History views driven through FileSystem, without a kernel: what they show and which names they own."""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from vfs.errors import Exists, NotFound, NotPermitted, ReadOnly
from vfs.fs.filesystem import FileSystem
from vfs.fs.types import Attr
from vfs.fs.views import is_synthetic
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo

ALICE = 1000


@pytest.fixture
async def fs(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FileSystem]:
    # One second between commits: a time between two commits then names exactly the first one.
    clock = itertools.count(1_800_000_000 * 10**9, 10**9)
    monkeypatch.setattr("vfs.catalog.transactions.now_ns", lambda: next(clock))
    monkeypatch.setattr("vfs.fs.staging.now_ns", lambda: next(clock))  # dates a save by its last write
    fs = FileSystem(repo)
    yield fs
    await fs.close()  # its spare staging files' descriptors too


async def save(fs: FileSystem, name: bytes, data: bytes, *, mode: int = 0o644, parent: InodeNo = ROOT_INO,
               uid: int = ALICE) -> InodeNo:
    """Write `data` to `name` (made with `mode` if missing), close it and commit the version."""
    try:
        ino = (await fs.lookup(parent, name)).ino
        fh = await fs.open(ino, os.O_WRONLY | os.O_TRUNC)
    except NotFound:
        fh, attr = await fs.create(parent, name, mode, os.O_WRONLY, uid, uid)
        ino = attr.ino
    await fs.write(fh, 0, data)
    await fs.release(fh)
    assert await fs.flush_all()
    return ino


async def read(fs: FileSystem, ino: InodeNo) -> bytes:
    fh = await fs.open(ino, os.O_RDONLY)
    try:
        return await fs.read(fh, 0, 1 << 20)
    finally:
        await fs.release(fh)


def perms(attr: Attr) -> tuple[int, int, int]:
    return stat.S_IMODE(attr.mode), attr.uid, attr.gid


def iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 10**9, UTC).isoformat()


async def test_old_versions_keep_the_owner_and_mode_they_had(fs: FileSystem, repo: Repository) -> None:
    # A secret written under umask 077, replaced by public content, and only then made readable.
    ino = await save(fs, b"config.ini", b"password=hunter2\n", mode=0o600)
    v1 = repo.catalog.version_at(ino)
    assert v1 is not None
    await fs.snapshot("secret")
    await save(fs, b"config.ini", b"password=\n")
    await fs.setattr(ino, mode=0o644, uid=0, gid=0)
    private, public = (0o600, ALICE, ALICE), (0o644, 0, 0)
    assert perms(await fs.lookup(ROOT_INO, b"config.ini")) == public
    listing = (await fs.lookup(ROOT_INO, b"config.ini@"))
    by_name = {name: attr for _, name, attr in (await fs.readdir(listing.ino, 0))}
    views = {
        "@1": (await fs.lookup(ROOT_INO, b"config.ini@1")),
        "@/1": (await fs.lookup(listing.ino, b"1")),
        "@/ listing": by_name[b"1"],
        "@time": (await fs.lookup(ROOT_INO, f"config.ini@{iso(v1.time_ns)}".encode())),
        "@NAME": (await fs.lookup(ROOT_INO, b"config.ini@secret")),
        ".snapshots": (await fs.lookup((await fs.lookup((await fs.lookup(ROOT_INO, b".snapshots")).ino,
                                                         b"secret")).ino, b"config.ini")),
    }
    for how, attr in views.items():
        assert perms(attr) == private, how
        assert await read(fs, attr.ino) == b"password=hunter2\n", how
    # Each version shows the state the commit that made it left: version 2 was made before the chmod.
    assert perms(await fs.lookup(ROOT_INO, b"config.ini@2")) == perms(by_name[b"2"]) == private
    await save(fs, b"config.ini", b"password=\n# public now\n")
    assert perms(await fs.lookup(ROOT_INO, b"config.ini@3")) == public
    # The listing shows what stat of each version shows anyway; each entry guards its own content.
    assert stat.S_IMODE(listing.mode) == 0o555 and (listing.uid, listing.gid) == (0, 0)


async def test_versions_made_by_a_file_renamed_over_keep_that_files_mode(fs: FileSystem) -> None:
    ino = await save(fs, b"notes", b"public\n", mode=0o644)
    # An editor's atomic save: a private temporary file renamed over the target continues its history.
    await save(fs, b".notes.tmp", b"private\n", mode=0o600)
    fs.rename(ROOT_INO, b".notes.tmp", ROOT_INO, b"notes")
    await fs.setattr((await fs.lookup(ROOT_INO, b"notes")).ino, mode=0o644)
    assert (await fs.lookup(ROOT_INO, b"notes")).ino != ino
    assert stat.S_IMODE((await fs.lookup(ROOT_INO, b"notes@1")).mode) == 0o644
    assert stat.S_IMODE((await fs.lookup(ROOT_INO, b"notes@2")).mode) == 0o600
    assert await read(fs, (await fs.lookup(ROOT_INO, b"notes@2")).ino) == b"private\n"


async def test_new_names_that_history_resolves_are_read_only(fs: FileSystem) -> None:
    f = await save(fs, b"f", b"a")
    await save(fs, b"f", b"b")
    g = await save(fs, b"g", b"g")
    d = (await fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0)).ino
    await save(fs, b"in-d", b"x", parent=d)
    await fs.snapshot("good")
    d2 = (await fs.mkdir(ROOT_INO, b"d2", 0o755, 0, 0)).ino
    for name in (b"f@1", b"f@", b"f@good", b".snapshots"):
        with pytest.raises(ReadOnly):
            fs.rename(ROOT_INO, b"g", ROOT_INO, name)
        with pytest.raises(ReadOnly):
            fs.rename(ROOT_INO, b"g", ROOT_INO, name, noreplace=True)
        with pytest.raises(ReadOnly):
            fs.link(g, ROOT_INO, name)
        with pytest.raises(ReadOnly):
            fs.symlink(ROOT_INO, name, b"g", 0, 0)
        with pytest.raises(ReadOnly):
            fs.mknod(ROOT_INO, name, stat.S_IFIFO | 0o644, 0, 0, 0)
        with pytest.raises(ReadOnly):
            await fs.mkdir(ROOT_INO, name, 0o755, 0, 0)
        with pytest.raises(ReadOnly):
            await fs.create(ROOT_INO, name, 0o644, os.O_WRONLY, 0, 0)
    with pytest.raises(ReadOnly):
        fs.rename(ROOT_INO, b"d2", ROOT_INO, b"d@good")
    with pytest.raises(ReadOnly):
        fs.rename(ROOT_INO, b"g", ROOT_INO, b"f@1", exchange=True)
    # Nothing changed: the views still show history, and the real names are where they were.
    assert await read(fs, (await fs.lookup(ROOT_INO, b"f@1")).ino) == b"a"
    assert [name for _, name, _ in (await fs.readdir((await fs.lookup(ROOT_INO, b"d@good")).ino, 0))] == [b"in-d"]
    assert [name for _, name, _ in (await fs.readdir(ROOT_INO, 0))] == [b"f", b"g", b"d", b"d2"]
    assert (await fs.lookup(ROOT_INO, b"d2")).ino == d2 and (await fs.lookup(ROOT_INO, b"f")).ino == f
    assert fs.repo.catalog.check() == []


async def test_names_that_only_look_like_history_are_ordinary(fs: FileSystem) -> None:
    await save(fs, b"f", b"a")
    # Nothing resolves these (no file `nofile`, no version 9 of f): they are free names, and a real
    # name wins over history once it exists.
    for name in (b"nofile@1", b"f@9", b"user@host.txt", b"user@caf\xe9.txt", b"f@\xff"):
        await save(fs, name, b"real " + name)
        assert await read(fs, (await fs.lookup(ROOT_INO, name)).ino) == b"real " + name
    fs.rename(ROOT_INO, b"nofile@1", ROOT_INO, b"g@2")
    fs.symlink(ROOT_INO, b"link@-1h", b"f", 0, 0)  # f did not exist an hour ago
    await save(fs, b"f", b"b")
    for _ in range(7):
        await save(fs, b"f", b"more")
    assert (await fs.lookup(ROOT_INO, b"f")).vno == 9
    assert await read(fs, (await fs.lookup(ROOT_INO, b"f@9")).ino) == b"real f@9"
    assert fs.repo.catalog.check() == []


async def test_raw_byte_names_in_history_paths(fs: FileSystem) -> None:
    await save(fs, b"caf\xe9.txt", b"one")
    await save(fs, b"caf\xe9.txt", b"two")
    d = (await fs.mkdir(ROOT_INO, b"dir\xff", 0o755, 0, 0)).ino
    await save(fs, b"\xfe", b"inside", parent=d)
    await fs.snapshot("s")
    await save(fs, b"\xfe", b"changed", parent=d)
    assert await read(fs, (await fs.lookup(ROOT_INO, b"caf\xe9.txt@1")).ino) == b"one"
    listing = (await fs.lookup(ROOT_INO, b"caf\xe9.txt@")).ino
    assert [name for _, name, _ in await fs.readdir(listing, 0)] == [b"1", b"2"]
    view = (await fs.lookup(ROOT_INO, b"dir\xff@s")).ino
    assert [name for _, name, _ in (await fs.readdir(view, 0))] == [b"\xfe"]
    assert await read(fs, (await fs.lookup(view, b"\xfe")).ino) == b"inside"
    assert await read(fs, (await fs.lookup(d, b"\xfe@s")).ino) == b"inside"


async def test_snapshot_names_are_utf8_and_raw_bytes_name_none(fs: FileSystem) -> None:
    snaps = (await fs.lookup(ROOT_INO, b".snapshots")).ino
    for name in (b"\xff", b"caf\xe9"):
        with pytest.raises(NotFound):
            (await fs.lookup(snaps, name))
        with pytest.raises(NotPermitted):
            await fs.mkdir(snaps, name, 0o755, 0, 0)
        with pytest.raises(NotFound):
            fs.rmdir(snaps, name)
    await fs.mkdir(snaps, "café ☕".encode(), 0o755, 0, 0)
    assert [name for _, name, _ in (await fs.readdir(snaps, 0))] == ["café ☕".encode()]
    with pytest.raises(Exists):
        await fs.mkdir(snaps, "café ☕".encode(), 0o755, 0, 0)
    fs.rmdir(snaps, "café ☕".encode())
    assert (await fs.readdir(snaps, 0)) == []


BAD_SPECS = [
    "9999999999999999999", "18446744073709551617", "-99999999999y", "-9999999999999999999s", "2263-01-01",
    "9999-12-31T23:59:59", "0001-01-01", "1969-12-31", "²", "\u0661", "\u0661\u0662", "-\u0661h",
    "\u0662\u0660\u0662\u0666-01-01", "0", "01", "abc", "2026-13-45", "-x", "\udcff",
]


@pytest.mark.parametrize("spec", BAD_SPECS)
async def test_bad_specs_are_enoent(fs: FileSystem, spec: str) -> None:
    await save(fs, b"f", b"a")
    await save(fs, b"f", b"b")
    raw = spec.encode(errors="surrogateescape")
    with pytest.raises(NotFound):
        (await fs.lookup(ROOT_INO, b"f@" + raw))
    with pytest.raises(NotFound):
        (await fs.lookup((await fs.lookup(ROOT_INO, b"f@")).ino, raw))
    with pytest.raises(NotFound):
        (await fs.lookup(ROOT_INO, b"nofile@" + raw))
    # Neither is it a view: such a name can be created, and is then a real name.
    await save(fs, b"f@" + raw, b"real")
    assert not is_synthetic((await fs.lookup(ROOT_INO, b"f@" + raw)).ino)
