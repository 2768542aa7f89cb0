"""`Volume`: a vfs volume from Python, without a mount (`vfs.open` in `vfs.api.opening` makes one).

Paths are paths inside the volume ('results/run1.csv'; '' or '/' is the root). Where a method reads, a
path may carry `@SPEC` as in the mount: `@3` (version 3), `@2026-11-21T10:15`, `@yesterday`, `@-2h`,
`@SNAPSHOT`; or be `blake3:HASH` (content by its hash) where content is read. Reads go to the store
directly; a mounted store's daemon is first asked to commit what open files hold, so a read sees what
was written in the mount before it. Writes: see `vfs.api.writer`.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vfs.api import reading
from vfs.api.download import write_file, write_tree
from vfs.api.files import NewVersionWriter, reader
from vfs.api.progress import bar
from vfs.api.reading import Entry, FileVersion
from vfs.api.urls import url_of
from vfs.api.writer import Writer, writer_for
from vfs.catalog import LIVE, Version
from vfs.compose import open_repository
from vfs.control.client import call, daemon_running
from vfs.errors import IsADirectory, KeyRequired, NoSuchPath, NotFound, NotWritable, UsageError, WrongPassphrase
from vfs.fs import snapshots
from vfs.fs.diff import Difference, diff
from vfs.fs.history import parse_spec
from vfs.fs.locate import joined, lookup_at, show
from vfs.fs.restore import Change
from vfs.fs.snapshots import SnapshotInfo
from vfs.fs.times import commit_named, time_option
from vfs.fs.views import SNAPSHOTS_NAME
from vfs.maintenance.put import PutItem, PutResult
from vfs.passwords import Wording, get_passphrase
from vfs.repository import Repository
from vfs.types import ROOT_INO, InodeNo

Source = str | os.PathLike[str] | bytes | IO[bytes]
# Directories of a folder being put that are read at once (disk reads when not cached). More contend
# for the GIL with the loop that makes the items: listing 7,070 entries took 0.11-0.26 s with 8 threads,
# 0.05-0.15 s with 2 (cold or cached; 2 cores).
SCAN_THREADS = 2
LocalPath = str | os.PathLike[str]
# How a Python user gives a passphrase, for the message when none is found (vfs.passwords).
_WORDING = Wording("password_file=", "key_file=", "password=, password_file= or key_file= to vfs.open")


@dataclass(frozen=True)
class _Plan:
    items: list[PutItem]
    sizes: list[int]


class Volume:
    """A vfs volume opened from Python (see `vfs.open`). Use it as a context manager, or `close()` it.

    Args:
        store: the store directory.
        writable: allow changes (put, write_*, snapshot, restore, ...); without it they raise NotWritable.
        password, password_file, key_file: how an encrypted volume is unlocked (see `vfs.open`).
        repository: the store, opened already (an `s3://` volume's cache, see `vfs.api.remote`); by
            default it is opened here without its lock (changes take it, or go through a daemon).
    """

    def __init__(self, store: Path, *, writable: bool = False, password: str | bytes | None = None,
                 password_file: LocalPath | None = None, key_file: LocalPath | None = None,
                 repository: Repository | None = None) -> None:
        self.store = store
        self.location = str(store)  # what messages name
        self.writable = writable
        if repository is not None:
            self._repo = repository
        else:
            unlock = Unlock(store, password, password_file, key_file)
            try:
                self._repo = open_repository(store, lock=False, passphrase=unlock)
            except WrongPassphrase as e:
                raise WrongPassphrase(f"{e} (the passphrase given by {unlock.source})") from None
        # An encrypted volume's keys, unlocked once: each write without a daemon reopens the store with them.
        self._keys = self._repo.keys

    def close(self) -> None:
        """Close the store (the volume cannot be used after)."""
        self._repo.close()

    def __enter__(self) -> Volume:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<vfs.Volume {self.location}{' writable' if self.writable else ''}>"

    @property
    def mounted(self) -> bool:
        """Whether a daemon serves the store now (writes then go through it)."""
        return daemon_running(self.store)

    # -- reading ---------------------------------------------------------------------------------
    def _settle(self) -> None:
        # Mounted: have the daemon commit what open (and just closed) files hold, as the CLI does.
        if daemon_running(self.store):
            call(self.store, {"op": "flush"})

    def stat(self, path: str) -> Entry:
        """What `PATH[@SPEC]` is: an `Entry` (type, size, mode, mtime, version, hash).

        Raises:
            NoSuchPath: nothing there (a FileNotFoundError).
        """
        self._settle()
        return reading.entry(self._repo.catalog, reading.located(self._repo.catalog, path), path)

    def exists(self, path: str) -> bool:
        """Whether `PATH[@SPEC]` names something."""
        try:
            self.stat(path)
        except NoSuchPath:
            return False
        return True

    def ls(self, path: str = "", detail: bool = False) -> list[str] | list[Entry]:
        """The names in the directory `PATH[@SPEC]` (a file lists as itself), sorted; with `detail`,
        their `Entry`s. Names carry the `@SPEC` asked with, so they can be passed back."""
        self._settle()
        entries = reading.listing(self._repo.catalog, path)
        return entries if detail else [e.name for e in entries]

    def walk(self, path: str = "") -> Iterator[tuple[str, list[str], list[str]]]:
        """(directory, its subdirectory names, its other names) for each directory under `PATH[@SPEC]`,
        top down, as os.walk does."""
        todo = [path]
        while todo:
            top = todo.pop()
            entries = self.ls(top, detail=True)
            assert all(isinstance(e, Entry) for e in entries)
            dirs = [os.path.basename(reading.split(e.name)[0][-1].decode(errors="surrogateescape"))
                    for e in entries if isinstance(e, Entry) and e.type == "directory"]
            files = [os.path.basename(reading.split(e.name)[0][-1].decode(errors="surrogateescape"))
                     for e in entries if isinstance(e, Entry) and e.type != "directory"]
            yield top, dirs, files
            todo.extend(reversed([e.name for e in entries if isinstance(e, Entry) and e.type == "directory"]))

    def _content(self, path: str) -> Version | None:
        self._settle()
        return reading.content(self._repo.catalog, path)

    def read_bytes(self, path: str) -> bytes:
        """The content of the file `PATH[@SPEC]` (or `blake3:HASH`)."""
        version = self._content(path)
        return b"" if version is None else b"".join(self._repo.iter_content(version))

    def read_text(self, path: str, encoding: str = "utf-8", errors: str = "strict") -> str:
        """`read_bytes`, decoded."""
        return self.read_bytes(path).decode(encoding, errors)

    def hash(self, path: str) -> str:
        """The content hash of the file `PATH[@SPEC]`: 'blake3:' and 64 hex digits (what `vfs log` shows)."""
        version = self._content(path)
        if version is None:
            from vfs.store.codec import file_hasher

            return reading.hash_text(file_hasher().digest())
        return reading.hash_text(version.hash)

    def url(self, path: str) -> str:
        """A stable reference to the content of `PATH[@SPEC]`: `blake3://HEX/NAME`, which `vfs.load(url)`
        and `vfs cat URL` resolve on any machine whose store holds that content (by hash, whatever its
        path there)."""
        names, _ = reading.split(path)
        name = names[-1].decode(errors="surrogateescape") if names and not reading.is_hash(path) else ""
        return url_of(self.hash(path), name)

    def open(self, path: str, mode: str = "rb") -> IO[bytes]:
        """A binary file object: "rb" reads `PATH[@SPEC]` or `blake3:HASH` (seekable; a read at an offset
        reads only the chunks it covers); "wb" writes a new version of PATH, put when it is closed ("xb":
        only if PATH does not exist)."""
        if mode == "rb":
            return reader(self._repo, self._content(path), path)
        if mode in ("wb", "xb"):
            self._check_writable(path)
            if mode == "xb" and self.exists(path):
                raise FileExistsError(f"{path} exists in the volume")
            return NewVersionWriter(path, lambda local: self._put_paths(path, local, exact=True, progress=False))
        raise UsageError(f"mode {mode!r}: the volume's files open as 'rb', 'wb' or 'xb' (binary; wrap one in"
                         " io.TextIOWrapper for text, or use read_text and write_text)")

    def get(self, path: str, dest: str | os.PathLike[str], *, progress: bool | None = None) -> Path:
        """Write the file or whole tree `PATH[@SPEC]` (or the content `blake3:HASH`) as it was to the local
        path `dest` (its missing parent directories made); a file goes into `dest` when that is an existing
        directory. Returns what was written."""
        self._settle()
        catalog = self._repo.catalog
        target = Path(dest)
        if reading.is_hash(path):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_file(self._repo, reading.by_hash(catalog, path), target, 0o644, None)
            return target
        found = reading.located(catalog, path)
        if not found.is_dir:
            if target.is_dir():
                target = target / os.fsdecode(found.names[-1] if found.names else b"file")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_file(self._repo, found.version, target, found.mode, None)
            return target
        items = list(reading.tree(catalog, found))
        files = [i for i in items if stat.S_ISREG(i.mode)]
        target.mkdir(parents=True, exist_ok=True)
        with bar(f"get {path or '/'}", sum(i.size for i in files), len(files), progress) as advance:
            write_tree(self._repo, items, found.at, target, advance)
        return target

    def versions(self, path: str = "", since: str | None = None, until: str | None = None) -> list[FileVersion]:
        """The versions of the file PATH, oldest first, or of every file that is or was under the
        directory PATH, newest first; with `since`/`until`, only those made then. Times as in `@` paths
        (2026-11-21T10:15, -2h, yesterday) or natural phrases ("midnight yesterday", "last friday 17:00")."""
        lo = None if since is None else time_option(since, "since")
        hi = None if until is None else time_option(until, "until")
        self._settle()
        return reading.versions(self._repo.catalog, path, lo, hi)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, oldest first, with its number of files and bytes."""
        return snapshots.describe(self._repo.catalog)

    def diff(self, a: str, b: str | None = None) -> list[Difference]:
        """What changed from A to B (default: now): snapshot names or times, as `vfs diff` takes them."""
        self._settle()
        catalog = self._repo.catalog
        try:
            older = commit_named(catalog, a)
            newer = catalog.head().no if b is None else commit_named(catalog, b)
        except UsageError as e:  # names no snapshot or time: as a path with a bad @SPEC is
            raise NoSuchPath(str(e)) from None
        return diff(catalog, older, newer)

    def status(self) -> dict[str, Any]:
        """The sync status (`vfs status --json`): the remote, what it still lacks, the last error."""
        if daemon_running(self.store):
            answer = call(self.store, {"op": "status"})
            answer.pop("ok", None)
            return answer
        from vfs.maintenance.service import Maintenance

        return Maintenance(self._repo).status()

    def fetch(self, paths: Sequence[str], *, progress: bool | None = None) -> int:
        """Download now the data of these files (or of all files under these directories), `PATH[@SPEC]`,
        that a partial clone would otherwise fetch when read; returns the bytes fetched (0 for a store
        without a remote: it holds all its data)."""
        from vfs.sync.clone import prefetch

        if isinstance(paths, str):
            raise UsageError("fetch takes a list of paths (fetch([path]))")
        wanted: list[Version] = []
        for path in paths:  # each must name something, even where there is nothing to fetch
            found = reading.located(self._repo.catalog, path)
            if found.is_dir:
                catalog = self._repo.catalog
                wanted += [v for i in reading.tree(catalog, found)
                           if i.has_content and (v := catalog.version_at(i.ino, found.at)) is not None]
            elif found.version is not None:
                wanted.append(found.version)
        if self._repo.fetcher is None:
            return 0
        total = sum(v.size for v in wanted)
        with bar("fetch", total, len(wanted), progress) as advance:
            done = [0]

            def show(nbytes: int, total_bytes: int, *_: Any) -> None:
                advance(max(nbytes - done[0], 0), 0)
                done[0] = nbytes

            return prefetch(self._repo, self._repo.fetcher.backend, wanted, progress=show)

    # -- writing ---------------------------------------------------------------------------------
    def _check_writable(self, path: str) -> tuple[bytes, ...]:
        """The volume path a write to `path` goes to (NotWritable for history or a read-only volume).

        History is any name the mount shows as a view rather than a real entry: `NAME@SPEC` (on the last
        component or on a directory above it: `d@snap/x`) and `/.snapshots`, unless a real entry has that
        name. Writing there would make a real file or directory of that name, hiding the view.
        """
        names, spec = reading.split(path)
        catalog = self._repo.catalog
        if spec is not None:
            full = joined(names, spec)
            if lookup_at(catalog, full, LIVE) is None and _is_history(catalog, spec):
                raise NotWritable(f"{path}: history is read-only (write to the path without @{spec})")
            names = full
        ino: InodeNo | None = ROOT_INO
        for i, name in enumerate(names):
            child = None if ino is None else catalog.lookup(ino, name)
            if child is None and _is_view(catalog, name, at_root=i == 0):
                raise NotWritable(f"{path}: {show(names[:i + 1])} is history, which is read-only")
            ino = child
        if not self.writable:
            raise NotWritable(f"{self.location} was opened read-only: open it with writable=True to change it")
        return names

    def put(self, dest: str, source: Source, *, checksum: bool = False, progress: bool | None = None) -> PutResult:
        """Store `source` at the volume path `dest` as new versions.

        `source` is a local file (it becomes the file `dest`, or goes into `dest` when that is a directory
        in the volume), a local folder (its contents go into the directory `dest`, made if missing), bytes,
        or a binary file object. A file whose content `dest` holds already makes no version and stores
        nothing: it has the size and mtime the volume's file has, or the same hash (`checksum=True`: always
        compare hashes). Returns what was created, updated, unchanged or skipped, and the bytes stored.
        """
        self._check_writable(dest)
        if isinstance(source, bytes) or not isinstance(source, str | os.PathLike):
            tmp = Path(tempfile.mkdtemp(prefix="vfs-put-"))
            try:
                local = tmp / "content"
                with builtins.open(local, "wb") as f:
                    if isinstance(source, bytes):
                        f.write(source)
                    else:
                        shutil.copyfileobj(source, f)
                return self._put_paths(dest, local, checksum=True, exact=True, progress=progress)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        local = Path(os.fspath(source))
        if not local.exists():
            raise NoSuchPath(f"{local}: no such local file or directory")
        return self._put_paths(dest, local, checksum=checksum, progress=progress)

    def _put_paths(self, dest: str, local: Path, *, checksum: bool = False, exact: bool = False,
                   progress: bool | None) -> PutResult:
        """Put the local file or folder `local`; with `exact`, a file becomes `dest` itself (content given
        as bytes or a stream has no name to go into a directory with)."""
        names = self._check_writable(dest)
        is_dir = self._is_volume_dir(names)
        if exact and is_dir:
            raise IsADirectory(f"{show(names)} is a directory in the volume" if names
                               else "the volume's root is a directory: put a file at a path inside it")
        plan = _plan(local, names, is_dir)
        writer = self._writer()
        total = sum(plan.sizes)
        with bar(f"put {local.name or local}", total, sum(not i.is_dir for i in plan.items), progress) as advance:
            return writer.put(plan.items, plan.sizes, checksum=checksum, advance=advance)

    def _writer(self) -> Writer:
        """What makes a change now: the daemon when the store is mounted, else this process."""
        return writer_for(self.store, self._keys)

    def _is_volume_dir(self, names: tuple[bytes, ...]) -> bool:
        ino = lookup_at(self._repo.catalog, names, LIVE)
        return ino is not None and self._repo.catalog.attr(ino).is_dir

    def write_bytes(self, path: str, data: bytes) -> PutResult:
        """Make `data` the content of the file PATH (a new version, unless it holds that already)."""
        return self.put(path, data, progress=False)

    def write_text(self, path: str, text: str, encoding: str = "utf-8") -> PutResult:
        """`write_bytes` of `text` encoded."""
        return self.put(path, text.encode(encoding), progress=False)

    def mkdir(self, path: str) -> None:
        """Make the directory PATH (and those above it); nothing if it exists."""
        names = self._check_writable(path)
        self._writer().put([PutItem("", names, is_dir=True)], [0], checksum=False, advance=lambda *_: None)

    def remove(self, path: str, *, recursive: bool = False) -> list[str]:
        """Remove PATH from the volume (a directory only with `recursive`); its history stays reachable
        (`PATH@SPEC`, `versions`). Returns the paths removed."""
        names = self._check_writable(path)
        with _no_such_path():
            return self._writer().remove(names, recursive=recursive)

    def snapshot(self, name: str | None = None) -> str:
        """Name the current tree (default name: the UTC time); returns the name."""
        self._check_writable("")
        return self._writer().snapshot(name)

    def delete_snapshot(self, name: str) -> None:
        """Delete a snapshot's name; the history it named stays."""
        self._check_writable("")
        with _no_such_path():
            self._writer().delete_snapshot(name)

    def restore(self, path: str, to: str | None = None, *, delete: bool = False, dry_run: bool = False) -> list[Change]:
        """Bring `PATH[@SPEC]` back as it was, as new versions (at `to` instead, when given); see `vfs restore`."""
        if not dry_run:
            self._check_writable("")
        names, spec = reading.split(path)
        dest = None if to is None else self._check_writable(to)
        try:
            with _no_such_path():
                return self._writer().restore(names, spec, dest, delete=delete, dry_run=dry_run)
        except UsageError as e:
            if "version" in str(e) or "snapshot" in str(e) or "time" in str(e):
                raise NoSuchPath(f"{path}: {e}") from None
            raise

    def sync(self, *, wait: bool = True, timeout: float = 300.0, progress: bool | None = None) -> dict[str, Any]:
        """Send what the remote lacks (a store with a remote): through the daemon when mounted (`wait`:
        until done or `timeout` seconds), else in this process, the store's lock held. Returns the status."""
        if daemon_running(self.store):
            answer = call(self.store, {"op": "sync", "wait": wait, "timeout": timeout}, timeout=timeout + 30)
            answer.pop("ok", None)
            return answer
        with open_repository(self.store, keys=self._keys) as repo:
            return sync_store(repo, timeout=timeout, progress=progress)

    def refresh(self) -> bool:
        """Bring the volume to its remote's newest state; whether it changed. A store directory is read
        as it is: False (a clone that writes nothing is brought up to date with `vfs pull`); see
        `vfs.open("s3://...")` for a volume that follows its remote."""
        return False


def sync_store(repo: Repository, *, timeout: float, progress: bool | None) -> dict[str, Any]:
    """Send what the remote lacks from the unmounted store `repo` (its lock held), within `timeout`
    seconds; the sync status after."""
    import trio

    from vfs.maintenance.service import Maintenance

    service = Maintenance(repo)
    with bar("sync", 0, 0, progress) as advance:
        seen = [0]

        def show(done: int, total: int, *_: int) -> None:
            advance(max(done - seen[0], 0), 0)
            seen[0] = done

        left = trio.run(lambda: service.sync_now(limit=timeout, progress=show))
    return left if left is not None else service.status()


class Unlock:
    """What unlocks a store if it is encrypted (called only then): `password`, else the sources the CLI
    reads (vfs.passwords: `password_file`, `key_file`, the environment, a prompt on a terminal only).
    Remembers where the passphrase came from, for the message when it is wrong."""

    def __init__(self, store: str | Path, password: str | bytes | None, password_file: LocalPath | None,
                 key_file: LocalPath | None) -> None:
        if password is not None and (password_file is not None or key_file is not None):
            raise UsageError("give one of password, password_file and key_file")
        self._store = store
        self._password = password
        self._password_file = None if password_file is None else Path(password_file).expanduser()
        self._key_file = None if key_file is None else Path(key_file).expanduser()
        self.source = "password="

    def __call__(self) -> bytes:
        if self._password is not None:
            return self._password.encode() if isinstance(self._password, str) else bytes(self._password)
        try:
            found = get_passphrase(password_file=self._password_file, key_file=self._key_file, wording=_WORDING)
        except KeyRequired as e:
            raise KeyRequired(f"{self._store} is an encrypted volume and {e}") from None
        self.source = found.source
        return found.secret


@contextlib.contextmanager
def _no_such_path() -> Iterator[None]:
    """The core's NotFound (a path, or a snapshot, that names nothing) as NoSuchPath, the
    FileNotFoundError a Python user catches (the daemon's answers included)."""
    try:
        yield
    except NoSuchPath:
        raise
    except NotFound as e:
        raise NoSuchPath(str(e)) from None


def _is_view(catalog: Any, name: bytes, *, at_root: bool) -> bool:
    """Whether the name `name`, which no real entry has, is one the mount shows as history."""
    if at_root and name == SNAPSHOTS_NAME:
        return True
    base, at, spec = name.rpartition(b"@")
    return bool(at and base) and _is_history(catalog, os.fsdecode(spec))


def _is_history(catalog: Any, spec: str) -> bool:
    """Whether `NAME@spec` reads as history: a version number, a time, `@` alone, or an existing snapshot.

    Stricter than the mount, which takes such a name as a new file's when it names nothing yet (`f@9`
    before f has a version 9): from a program, a write to `f@9` or `f@-1h` is a mistake, never a name.
    """
    if catalog.snapshot(spec) is not None:
        return True
    parsed = parse_spec(spec)
    return parsed is not None and parsed.snapshot is None


def _plan(local: Path, dest: tuple[bytes, ...], dest_is_dir: bool) -> _Plan:
    """The put items of `local` at `dest`: a file (into `dest` when it is a directory), or a folder's tree
    (its directories first, so empty ones are made too). Symlinks and special files are left out."""
    if local.is_file():
        name = os.fsencode(local.name)
        target = (*dest, name) if dest_is_dir or not dest else dest
        return _Plan([PutItem(str(local), target)], [local.stat().st_size])
    if not local.is_dir():
        raise UsageError(f"{local} is neither a regular file nor a directory")
    items, sizes = [PutItem(str(local), dest, is_dir=True)], [0]
    # A directory not in the page cache is a disk read, and so is each file's inode: the pool scans
    # directories (and stats their files) ahead, as soon as they are found, while they are put in
    # order here, depth first (the order the catalog lists a tree in, so `get` reads packs front to back).
    with ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="vfs-scan") as pool:
        todo = [(pool.submit(_scan, os.fspath(local)), dest)]
        while todo:
            found, base = todo.pop()
            for entry, path, is_dir, size in found.result():
                names = (*base, os.fsencode(entry))
                items.append(PutItem(path, names, is_dir=is_dir))
                sizes.append(size)
                if is_dir:
                    todo.append((pool.submit(_scan, path), names))
    return _Plan(items, sizes)


def _scan(top: str) -> list[tuple[str, str, bool, int]]:
    """(name, path, is a directory, size) of the directories and regular files in `top`, by name; symlinks
    and special files are left out. os.scandir: kinds from the directory itself, one lstat per file."""
    with os.scandir(top) as it:
        entries = sorted(it, key=lambda e: e.name)
    out = []
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            out.append((e.name, e.path, True, 0))
        elif e.is_file(follow_symlinks=False):
            out.append((e.name, e.path, False, e.stat(follow_symlinks=False).st_size))
    return out


__all__ = ["Entry", "FileVersion", "Volume", "sync_store"]
