"""Model test: random operation sequences applied to the mount and to a local directory must agree.

Hypothesis drives a state machine whose every rule runs the same operation under both roots (the
mount first) and demands the same outcome: the same result, or an OSError with the same errno.
After every step both trees are walked and compared: names, kinds, permission bits, sizes, link
counts of non-directories, file contents and symlink targets. Open handles persist across steps, so
writes through a handle to a file that was renamed, unlinked or truncated meanwhile are covered too.
One mount serves the whole run; the tree is emptied before each example.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.fuse.conftest import Mount

pytestmark = [pytest.mark.fuse, pytest.mark.slow]

# Few names, so that operations collide: existing targets, non-empty directories, files as parents.
_depth1 = st.sampled_from(["a", "b", "c"])
_depth2 = st.sampled_from(["a/a", "a/b", "b/a", "b/c", "c/a"])
_depth3 = st.sampled_from(["a/a/a", "a/b/c", "b/a/a"])
paths = st.one_of(_depth1, _depth1, _depth2, _depth2, _depth3)  # one_of picks a branch uniformly
link_targets = st.sampled_from(["a", "b", "a/b", "../a", "../../c", "missing", "/proc/self/none"])
modes = st.sampled_from([0o644, 0o600, 0o755, 0o700, 0o444, 0o000, 0o777, 0o4755, 0o1777])
offsets = st.one_of(st.integers(0, 300), st.integers(0, 200_000))
sizes = st.one_of(st.integers(0, 300), st.integers(0, 200_000))
datas = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda n, b: bytes([b]) * n, st.integers(1, 150_000), st.integers(0, 255)),
    st.builds(lambda n, seed: bytes((seed * i + i // 7) % 256 for i in range(n)),
              st.integers(1, 70_000), st.integers(1, 255)),
)
write_kinds = st.sampled_from(["create", "overwrite", "trunc", "append", "excl"])
xattr_names = st.sampled_from([b"user.a", b"user.b", b"user." + b"x" * 200])
# ext4 (the reference) keeps all of an inode's attributes in one 4 KiB block: stay well below it.
xattr_values = st.one_of(st.binary(max_size=50), st.binary(min_size=300, max_size=800))
MAX_HANDLES = 4
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(src: Path, dst: Path, flags: int) -> None:
    if _libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), flags) != 0:  # -100: AT_FDCWD
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

Outcome = tuple[str, Any]


def outcome(fn: Callable[[Path], Any], root: Path) -> Outcome:
    try:
        return ("ok", fn(root))
    except OSError as e:
        return ("error", errno.errorcode.get(e.errno or 0, e.errno))


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything the model compares about the tree under `root`, by relative path."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            s = os.lstat(p)
            rel = os.path.relpath(p, root)
            kind = stat.S_IFMT(s.st_mode)
            if stat.S_ISDIR(s.st_mode):
                out[rel] = ("dir", stat.S_IMODE(s.st_mode))
            elif stat.S_ISLNK(s.st_mode):
                out[rel] = ("symlink", os.readlink(p), s.st_size, s.st_nlink)
            elif stat.S_ISREG(s.st_mode):
                with open(p, "rb") as f:
                    content = f.read()
                assert len(content) == s.st_size, f"{p}: st_size {s.st_size} but {len(content)} bytes read"
                out[rel] = ("file", stat.S_IMODE(s.st_mode), s.st_size, s.st_nlink, content)
            else:
                out[rel] = ("other", kind)
    return out


def logged(fn: Callable[..., None]) -> Callable[..., None]:
    """Record a rule's call in the machine's history, shown when the trees differ.

    Hypothesis prints the steps of a failing example only when it can replay the failure; a race in
    the filesystem may not replay, and then this history is all there is.
    """

    @functools.wraps(fn)
    def wrapper(self: FsModel, **kwargs: Any) -> None:
        args = ", ".join(f"{k}={_short_value(v)}" for k, v in kwargs.items())
        self.history.append(f"{fn.__name__}({args})")
        fn(self, **kwargs)

    return wrapper


def _short_value(v: Any) -> str:
    return f"<{len(v)} bytes>" if isinstance(v, bytes) and len(v) > 40 else repr(v)


class FsModel(RuleBasedStateMachine):
    mnt: ClassVar[Path]
    ref: ClassVar[Path]

    def __init__(self) -> None:
        super().__init__()
        for root in (self.mnt, self.ref):
            for child in root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        # Open handles: (fd on the mount, fd on the reference, the path it was opened by).
        self.handles: list[tuple[int, int, str]] = []
        self.history: list[str] = []

    def both(self, fn: Callable[[Path], Any]) -> Outcome:
        got, want = outcome(fn, self.mnt), outcome(fn, self.ref)
        assert got == want, f"mount: {got!r}, local: {want!r} after:\n  " + "\n  ".join(self.history)
        return got

    def teardown(self) -> None:
        for fm, fr, _ in self.handles:
            os.close(fm)
            os.close(fr)
        self.handles.clear()

    @initialize(dirs=st.lists(st.booleans(), min_size=3, max_size=3), data=datas)
    @logged
    def populate(self, dirs: list[bool], data: bytes) -> None:
        """Start from a small tree, so that most operations find something: a, b, c are dirs or files."""
        for name, is_dir in zip("abc", dirs, strict=True):
            if is_dir:
                self.both(lambda root, name=name: os.mkdir(root / name))
                self.both(lambda root, name=name: (root / name / "a").write_bytes(data))
            else:
                self.both(lambda root, name=name: (root / name).write_bytes(data[: len(name) * 100]))

    # -- whole-file operations -------------------------------------------------------------------
    @rule(path=paths, kind=write_kinds, offset=offsets, data=datas)
    @logged
    def write(self, path: str, kind: str, offset: int, data: bytes) -> None:
        flags = {"create": os.O_CREAT, "overwrite": 0, "trunc": os.O_CREAT | os.O_TRUNC,
                 "append": os.O_CREAT | os.O_APPEND, "excl": os.O_CREAT | os.O_EXCL}[kind]

        def op(root: Path) -> int:
            fd = os.open(root / path, os.O_WRONLY | flags, 0o644)
            try:
                return os.write(fd, data) if kind == "append" else os.pwrite(fd, data, offset)
            finally:
                os.close(fd)

        self.both(op)

    @rule(path=paths, size=sizes)
    @logged
    def truncate(self, path: str, size: int) -> None:
        self.both(lambda root: os.truncate(root / path, size))

    @rule(path=paths)
    @logged
    def read(self, path: str) -> None:
        self.both(lambda root: (root / path).read_bytes())

    @rule(path=paths, offset=offsets, size=st.integers(0, 70_000))
    @logged
    def read_range(self, path: str, offset: int, size: int) -> None:
        def op(root: Path) -> bytes:
            fd = os.open(root / path, os.O_RDONLY)
            try:
                return os.pread(fd, size, offset)
            finally:
                os.close(fd)

        self.both(op)

    # -- names -----------------------------------------------------------------------------------
    @rule(path=paths, mode=st.sampled_from([0o755, 0o700, 0o555]))
    @logged
    def mkdir(self, path: str, mode: int) -> None:
        self.both(lambda root: os.mkdir(root / path, mode))

    @rule(path=paths)
    @logged
    def rmdir(self, path: str) -> None:
        self.both(lambda root: os.rmdir(root / path))

    @rule(path=paths)
    @logged
    def unlink(self, path: str) -> None:
        self.both(lambda root: os.unlink(root / path))

    @rule(src=paths, dst=paths)
    @logged
    def rename(self, src: str, dst: str) -> None:
        self.both(lambda root: os.rename(root / src, root / dst))

    @rule(src=paths, dst=paths, flags=st.sampled_from([RENAME_NOREPLACE, RENAME_EXCHANGE]))
    @logged
    def rename2(self, src: str, dst: str, flags: int) -> None:
        self.both(lambda root: renameat2(root / src, root / dst, flags))

    @rule(dest=link_targets, path=paths)
    @logged
    def symlink(self, dest: str, path: str) -> None:
        self.both(lambda root: os.symlink(dest, root / path))

    @rule(src=paths, dst=paths)
    @logged
    def link(self, src: str, dst: str) -> None:
        self.both(lambda root: os.link(root / src, root / dst, follow_symlinks=False))

    @rule(path=paths, mode=modes)
    @logged
    def chmod(self, path: str, mode: int) -> None:
        self.both(lambda root: os.chmod(root / path, mode))

    @rule(path=paths)
    @logged
    def listdir(self, path: str) -> None:
        self.both(lambda root: sorted(os.listdir(root / path)))

    @rule(path=paths)
    @logged
    def stat_path(self, path: str) -> None:
        def op(root: Path) -> tuple[int, int]:
            s = os.stat(root / path)
            return stat.S_IFMT(s.st_mode) | stat.S_IMODE(s.st_mode), 0 if stat.S_ISDIR(s.st_mode) else s.st_size

        self.both(op)

    # -- extended attributes (user namespace; following symlinks) --------------------------------
    @rule(path=paths, name=xattr_names, value=xattr_values,
          flags=st.sampled_from([0, os.XATTR_CREATE, os.XATTR_REPLACE]))
    @logged
    def setxattr(self, path: str, name: bytes, value: bytes, flags: int) -> None:
        self.both(lambda root: os.setxattr(root / path, name, value, flags))

    @rule(path=paths, name=xattr_names)
    @logged
    def getxattr(self, path: str, name: bytes) -> None:
        self.both(lambda root: os.getxattr(root / path, name))

    @rule(path=paths)
    @logged
    def listxattr(self, path: str) -> None:
        self.both(lambda root: sorted(n for n in os.listxattr(root / path) if n.startswith("user.")))

    @rule(path=paths, name=xattr_names)
    @logged
    def removexattr(self, path: str, name: bytes) -> None:
        self.both(lambda root: os.removexattr(root / path, name))

    # -- handles kept open across steps ----------------------------------------------------------
    @precondition(lambda self: len(self.handles) < MAX_HANDLES)
    @rule(path=paths, create=st.booleans())
    @logged
    def open_handle(self, path: str, create: bool) -> None:
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        fm = outcome(lambda root: os.open(root / path, flags, 0o640), self.mnt)
        fr = outcome(lambda root: os.open(root / path, flags, 0o640), self.ref)
        if fm[0] == "ok" and fr[0] == "ok":
            self.handles.append((fm[1], fr[1], path))
            return
        for o in (fm, fr):
            if o[0] == "ok":
                os.close(o[1])
        assert fm[0] == fr[0] == "error" and fm == fr, f"mount: {fm}, local: {fr}"

    def _handle(self, i: int) -> tuple[int, int]:
        fm, fr, _ = self.handles[i % len(self.handles)]
        return fm, fr

    def both_fd(self, i: int, fn: Callable[[int], Any]) -> Outcome:
        fm, fr = self._handle(i)
        got, want = outcome(lambda _: fn(fm), self.mnt), outcome(lambda _: fn(fr), self.ref)
        assert got == want, f"mount: {got!r}, local: {want!r} after:\n  " + "\n  ".join(self.history)
        return got

    @precondition(lambda self: self.handles)
    @rule(i=st.integers(0, MAX_HANDLES - 1), offset=offsets, data=datas)
    @logged
    def handle_write(self, i: int, offset: int, data: bytes) -> None:
        self.both_fd(i, lambda fd: os.pwrite(fd, data, offset))

    @precondition(lambda self: self.handles)
    @rule(i=st.integers(0, MAX_HANDLES - 1))
    @logged
    def handle_read(self, i: int) -> None:
        self.both_fd(i, lambda fd: (os.fstat(fd).st_size, os.pread(fd, 1 << 20, 0)))

    @precondition(lambda self: self.handles)
    @rule(i=st.integers(0, MAX_HANDLES - 1), size=sizes)
    @logged
    def handle_truncate(self, i: int, size: int) -> None:
        self.both_fd(i, lambda fd: os.ftruncate(fd, size))

    @precondition(lambda self: self.handles)
    @rule(i=st.integers(0, MAX_HANDLES - 1))
    @logged
    def handle_fsync(self, i: int) -> None:
        self.both_fd(i, os.fsync)

    @precondition(lambda self: self.handles)
    @rule(i=st.integers(0, MAX_HANDLES - 1))
    @logged
    def handle_close(self, i: int) -> None:
        fm, fr, _ = self.handles.pop(i % len(self.handles))
        os.close(fm)
        os.close(fr)

    # -- after every step ------------------------------------------------------------------------
    @invariant()
    def trees_agree(self) -> None:
        got, want = snapshot(self.mnt), snapshot(self.ref)
        if got != want:
            diff = {k: (got.get(k), want.get(k)) for k in sorted(got.keys() | want.keys()) if got.get(k) != want.get(k)}
            raise AssertionError("trees differ (mount, local):\n" + "\n".join(
                f"  {k}: {_short(m)} != {_short(r)}" for k, (m, r) in diff.items()) + "\nafter:\n  "
                + "\n  ".join(self.history))


def _short(entry: tuple[Any, ...] | None) -> str:
    if entry is None:
        return "missing"
    return repr(tuple(_short_value(x) for x in entry))


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Path]:
    ref = tmp_path / "reference"
    ref.mkdir()
    yield ref
    for p in ref.rglob("*"):  # chmod 000 / 555 directories must not stop tmp_path cleanup
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o700)


class RemountingFsModel(FsModel):
    """The model, plus unmounting and mounting again, or killing the daemon with SIGKILL and mounting
    again (at most twice per example: each takes a second). Every handle is closed first, so all that
    was written has reached the daemon: a crash then must lose nothing.
    """

    mount: ClassVar[Mount]

    def __init__(self) -> None:
        super().__init__()
        self.remounts_left = 2

    @precondition(lambda self: not self.handles and self.remounts_left > 0)
    @rule()
    @logged
    def remount(self) -> None:
        self.remounts_left -= 1
        self.mount.stop()
        self.mount.start()

    @precondition(lambda self: not self.handles and self.remounts_left > 0)
    @rule()
    @logged
    def crash(self) -> None:
        self.remounts_left -= 1
        self.mount.kill9()
        self.mount.start()


def _settings(examples: int, steps: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_mount_behaves_like_a_local_directory(mount: Mount, reference: Path) -> None:
    machine = type("MountModel", (FsModel,), {"mnt": mount.path, "ref": reference})
    run_state_machine_as_test(machine, settings=_settings(40, 40))
    # The last example's final tree must survive an unmount.
    before = snapshot(reference)
    assert snapshot(mount.path) == before
    mount.stop()
    mount.start()
    assert snapshot(mount.path) == before
    assert not mount.log_problems(), "daemon log:\n" + (mount.store / "vfs.log").read_text()


def test_model_across_remounts(mount: Mount, reference: Path) -> None:
    machine = type("RemountModel", (RemountingFsModel,), {"mnt": mount.path, "ref": reference, "mount": mount})
    run_state_machine_as_test(machine, settings=_settings(8, 30))
    problems = [line for line in mount.log_problems() if "left uncommitted by an earlier daemon" not in line]
    assert not problems, "daemon log:\n" + (mount.store / "vfs.log").read_text()
