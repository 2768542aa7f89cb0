"""Filesystem benchmark: the same workloads on several targets in one run, with ratios between them.

A target is a directory the workloads run in, plus what it takes to make reads cold and writes durable:
  plain        a directory on the same disk (the ext4 ceiling);
  passthrough  scripts/passthrough.py over a fresh directory (the ceiling for a Python FUSE filesystem);
  vfs          `vfs init STORE`, then `vfs mount STORE MOUNTPOINT`; skipped, with the reason, when that fails;
  rclone       `rclone mount --vfs-cache-mode full` of a local directory (what users would use instead;
               Debian's rclone is installed with apt-get when missing);
  vfs-main     with --vfs-main DIR: vfs from the source tree DIR (e.g. main's), to compare before and after
               a change in one run.

Workloads (each runs on every target before the next starts, so that machine noise hits all of them; each
starts, on each target, on a quiet machine: synced, and CPUs idle for a second, so that the background
work one target leaves, such as vfs committing versions or rclone uploading, is not timed on another; the
phases of one workload follow each other at once, as a user's commands would):
  small  --small-files files of 1-8 KiB in 100 directories: create (Python open/write/close), stat
         (`find -ls`), read, delete (`rm -rf`), each phase timed alone, warm (no cache drop between phases).
  tree   a tarball of a real tree (default: the Python stdlib), built once into /tmp: `tar xf` on the target,
         then `git init`, `git add -A`, `git commit`, and `git status` twice (the second one timed).
  fio    fio sequential 1 MiB writes of --size, and random 4 KiB writes over --rand-size (IOPS), each with
         an fsync at the end, each on a quiet machine (Debian's fio is installed when missing).
  seq    write --size bytes in 1 MiB writes of incompressible, never-repeating data, fsync, close ("write";
         each run prints how much of the page cache the fsync left dirty: rclone's fsync writes nothing);
         the same plus the target's commit ("write+commit": `vfs umount`, which returns once everything is
         committed, then a remount; for rclone, its upload to its source, then a remount; nothing for the
         others); read it back in 1 MiB
         reads cold (FUSE targets remounted, page cache dropped) and hot (again, at once).

--requests then counts, for passthrough and vfs, the FUSE requests each of a few operations costs (create,
create+write+close, stat, unlink, a missing name) and the mean time per request in the daemon: each
operation runs on 200 files in a fresh mount with VFS_FUSE_STATS set (vfs/fuse/stats.py).

Ratios are relative speed: 1.00 = as fast as the baseline, 0.50 = half as fast, whatever the unit.
This is a benchmark, not a test: it prints figures and exits 0 unless it could not run at all.
Dropping the page cache needs root; without it "cold" reads are not cold.
Before the workloads, most of the free memory is touched once (a VM's first touch of a page is slow and
would be charged to whichever target cached the most pages; --no-warm-memory skips it).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import mmap
import os
import platform
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

MiB = 1 << 20
SMALL_DIRECTORIES = 100
REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH = REPO / "scripts" / "passthrough.py"
TARBALL_DIR = Path("/tmp")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TargetUnavailable(Exception):
    """The target cannot be mounted here (yet); the run goes on without it."""


def drop_caches() -> None:
    """Write back dirty pages, then drop the page, dentry and inode caches (root only)."""
    os.sync()
    with contextlib.suppress(PermissionError):
        Path("/proc/sys/vm/drop_caches").write_text("3")


def run(cmd: list[str], timeout: float = 600, check: bool = True, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, cwd=cwd, env=env)


def is_mounted(path: Path) -> bool:
    """Whether something is mounted on path; unlike os.path.ismount, also true for a dead FUSE mount."""
    with open("/proc/self/mountinfo") as mountinfo:
        mountpoints = {line.split()[4].encode().decode("unicode_escape") for line in mountinfo}
    return str(path) in mountpoints


def fuse_unmount(mountpoint: Path) -> None:
    """Unmount a FUSE mount; lazily if it stays busy."""
    for _ in range(20):
        if not is_mounted(mountpoint):
            return
        if run(["fusermount3", "-u", str(mountpoint)], check=False).returncode == 0:
            return
        time.sleep(0.1)
    run(["fusermount3", "-u", "-z", str(mountpoint)], check=False)


class Target:
    """A directory for the workloads; subclasses mount something there."""

    name = ""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / self.name

    def start(self) -> None:
        self.root.mkdir()

    def cold(self) -> None:
        """Make the next reads come from the disk."""
        drop_caches()

    def commit(self) -> None:
        """Return once written data is durable the way the target defines it (after the files' fsync)."""

    def stop(self) -> None:
        """Release what start() acquired; idempotent, also called after failures."""


class Plain(Target):
    name = "plain"


class Passthrough(Target):
    name = "passthrough"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.source = base / "passthrough-source"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.source.mkdir(exist_ok=True)
        self.root.mkdir(exist_ok=True)
        # Own session: a Ctrl-C must not kill the daemon before stop() unmounts.
        self.proc = subprocess.Popen(
            [sys.executable, str(PASSTHROUGH), str(self.source), str(self.root), "--foreground"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, args=(self.proc, lines), daemon=True).start()
        deadline = time.monotonic() + 30
        try:
            while (line := lines.get(timeout=max(0.1, deadline - time.monotonic()))) is not None:
                if "ready:" in line:
                    return
                if "WARNING" in line or "ERROR" in line:
                    progress(f"passthrough: {line.rstrip()}")
        except queue.Empty:
            raise TargetUnavailable("passthrough.py was not ready within 30 s") from None
        raise TargetUnavailable(f"passthrough.py exited with {self.proc.wait()}")

    @staticmethod
    def _drain(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    def cold(self) -> None:
        self.stop()
        drop_caches()
        self.start()

    def stop(self) -> None:
        fuse_unmount(self.root)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)  # it exits once unmounted (after writing its request counts)
            # Still running if it was not mounted yet: SIGTERM makes it unmount and exit.
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            fuse_unmount(self.root)  # in case it died mounted


class Vfs(Target):
    """The vfs filesystem through its CLI: `init` once, `mount` (returns when mounted), `umount` (returns
    once everything is committed)."""

    name = "vfs"
    command = [str(REPO / ".venv" / "bin" / "vfs")]
    env: dict[str, str] | None = None  # None: this process's environment, as it is at each call
    cwd: Path | None = None

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.store = base / "vfs-store"
        self.mounted = False

    def _vfs(self, *args: str, timeout: float = 600) -> None:
        try:
            done = run([*self.command, *args], timeout=timeout, check=False, cwd=self.cwd, env=self.env)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TargetUnavailable(f"`vfs {args[0]}`: {e}") from None
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise TargetUnavailable(f"`vfs {args[0]}` exited with {done.returncode}: {last}")

    def start(self) -> None:
        if not self.store.exists():
            self._vfs("init", str(self.store), timeout=60)
        self.root.mkdir(exist_ok=True)
        self.mounted = True  # from here on stop() must try to unmount, even if mount reports failure
        self._vfs("mount", str(self.store), str(self.root), timeout=60)
        if not is_mounted(self.root):
            raise TargetUnavailable(f"`vfs mount` returned but {self.root} is not a mount point")

    def commit(self) -> None:
        self.stop()
        self.start()

    def cold(self) -> None:
        self.stop()
        drop_caches()
        self.start()

    def stop(self) -> None:
        if self.mounted:
            self.mounted = False
            with contextlib.suppress(TargetUnavailable):
                self._vfs("umount", str(self.root))
            fuse_unmount(self.root)  # if `vfs umount` failed; the daemon exits when unmounted


class VfsMain(Vfs):
    """vfs from another source tree (--vfs-main DIR, e.g. `git archive main vfs | tar x -C DIR`), run with
    this checkout's virtualenv: the code before a change, measured in the same run as the code after it.
    PYTHONPATH puts DIR first; the daemon runs `python -m`, which would put its working directory first,
    so it runs in DIR."""

    name = "vfs-main"
    source: Path = Path()

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.store = base / "vfs-main-store"
        self.cwd = self.source

    def _vfs(self, *args: str, timeout: float = 600) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(self.source)}  # at each call: --requests sets a variable
        super()._vfs(*args, timeout=timeout)


class Rclone(Target):
    """`rclone mount --vfs-cache-mode full` of a local directory: what users reach for instead of vfs.
    Debian's rclone package is installed (apt-get) when rclone is missing and we are root.

    Its commit is its upload to the source: `commit` waits until the source holds every file of its
    cache, whole. That includes rclone's write-back delay (`--vfs-write-back`, 5 s by default): an
    unmount before then leaves the data in its cache only. (With `--vfs-write-back 0s`, `git status`
    in the tree workload failed in a run on rclone 1.60.)"""

    name = "rclone"

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.source = base / "rclone-source"
        self.cache = base / "rclone-cache"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        ensure_program("rclone", "rclone")
        self.source.mkdir(exist_ok=True)
        self.root.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            ["rclone", "mount", "--config", "/dev/null", "--vfs-cache-mode", "full", "--cache-dir",
             str(self.cache), str(self.source), str(self.root)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while not is_mounted(self.root):
            if self.proc.poll() is not None:
                raise TargetUnavailable(f"rclone mount exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise TargetUnavailable("rclone mount was not mounted within 30 s")
            time.sleep(0.05)

    def commit(self) -> None:
        # rclone exits at unmount without finishing its uploads (seen with 1.60): wait for them first.
        cached = self.cache / "vfs" / "local" / self.source.relative_to("/")
        if not cached.is_dir():  # another rclone's cache layout: waiting for nothing would time nothing
            raise RuntimeError(f"rclone's cache of {self.source} is not at {cached}")
        deadline = time.monotonic() + 600
        while any(not uploaded(f, self.source / f.relative_to(cached)) for f in cached.rglob("*") if f.is_file()):
            if time.monotonic() > deadline:
                raise RuntimeError("rclone did not upload its cache to its source within 600 s")
            time.sleep(0.05)
        self.stop()
        self.start()

    def cold(self) -> None:
        self.stop()
        drop_caches()
        self.start()

    def stop(self) -> None:
        if self.proc is not None:
            fuse_unmount(self.root)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            fuse_unmount(self.root)


def uploaded(cached: Path, source: Path) -> bool:
    """Whether `source` holds as many bytes as rclone's cached copy `cached` (a file rclone may be
    writing still is larger in its cache)."""
    try:
        return source.stat().st_size == cached.stat().st_size
    except FileNotFoundError:
        return not cached.exists()


def ensure_program(program: str, package: str) -> None:
    """Install Debian's `package` when `program` is missing (root only)."""
    if shutil.which(program):
        return
    if os.geteuid() != 0:
        raise TargetUnavailable(f"{program} is not installed (apt-get install {package})")
    progress(f"installing {package} with apt-get")
    done = run(["apt-get", "install", "-y", "-q", package], check=False,
               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if done.returncode != 0 or not shutil.which(program):
        raise TargetUnavailable(f"apt-get install {package} failed: {done.stderr.strip()[-200:]}")


TARGETS: dict[str, type[Target]] = {t.name: t for t in (Plain, Passthrough, Vfs, VfsMain, Rclone)}
WORKLOADS = ("small", "tree", "fio", "seq")


@dataclass
class Row:
    """One figure of one workload, per target."""

    workload: str
    unit: str  # MiB/s, files/s: higher is better; s: lower is better
    values: dict[str, float] = field(default_factory=dict)

    def speed(self, target: str) -> float:
        value = self.values[target]
        return 1 / value if self.unit == "s" else value


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot; iowait counts as idle."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def quiet(busy_below: float = 0.15, timeout: float = 300) -> None:
    """Sync, then wait until the CPUs are mostly idle for a second: one target's background work (vfs
    committing versions, rclone uploading) then runs before the next timed job, not inside it."""
    os.sync()
    deadline = time.monotonic() + timeout
    before = cpu_times()
    while time.monotonic() < deadline:
        time.sleep(1)
        after = cpu_times()
        if (after[0] - before[0]) < busy_below * max(1, after[1] - before[1]):
            return
        before = after
    progress(f"the machine was still busy after {timeout:.0f} s; timing anyway")


def warm_memory(limit: int = 16 << 30, spare: int = 4 << 30) -> None:
    """Touch most of the free memory once, then free it. In a VM the first touch of each page of guest
    memory is slow (seen here: 530 MiB/s, against 5 GiB/s for a page touched before), so the first
    writes into page caches ran at that speed, and a target lost by the pages it cached, not by its
    own work: vfs and the passthrough cache each byte twice (the kernel's FUSE pages, then their
    file's), rclone once. Steady state, as on a machine that has run for a while, is what we compare."""
    with open("/proc/meminfo") as f:
        free = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    size = min(limit, free - spare) // MiB * MiB
    if size <= 0:
        return
    progress(f"touching {size // MiB} MiB of free memory once")
    chunk = b"\1" * (64 * MiB)
    with mmap.mmap(-1, size) as m:
        for _ in range(size // len(chunk)):
            m.write(chunk)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_all(path: Path) -> int:
    buf = bytearray(MiB)
    fd = os.open(path, os.O_RDONLY)
    total = 0
    try:
        while n := os.readv(fd, [buf]):
            total += n
    finally:
        os.close(fd)
    return total


class Workloads:
    """The workloads, each a method returning {row name: (unit, value)} for one target."""

    def __init__(self, size: int, small_files: int, rand_size: int, tarball: Path) -> None:
        self.size = size
        self.small_files = small_files
        self.rand_size = rand_size
        self.tarball = tarball
        self._blocks: list[bytes] = []
        self._small: list[bytes] = []

    def blocks(self) -> list[bytes]:
        if not self._blocks:  # distinct random blocks: no compression or deduplication can help
            progress(f"generating {self.size // MiB} MiB of random data")
            rng = random.Random(1)
            self._blocks = [rng.randbytes(MiB) for _ in range(self.size // MiB)]
        return self._blocks

    def seq(self, target: Target) -> dict[str, tuple[str, float]]:
        path = target.root / "big"
        label = f"{self.size / MiB:g} MiB"

        def write() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                start = time.perf_counter()
                for block in self.blocks():
                    write_all(fd, block)
                written = time.perf_counter()
                os.fsync(fd)
                synced = time.perf_counter()
                # What the fsync left unwritten shows whether it reached the disk (rclone's does not).
                progress(f"{target.name}: writes {written - start:.2f} s, fsync {synced - written:.2f} s, "
                         f"then {dirty_mib() - dirty_before:,} MiB more dirty in the page cache than before")
            finally:
                os.close(fd)

        self.blocks()
        os.sync()
        dirty_before = dirty_mib()
        write_s = timed(write)
        commit_s = timed(target.commit)
        target.cold()
        cold_s = timed(lambda: read_all(path))
        hot_s = timed(lambda: read_all(path))
        if (size := path.stat().st_size) != self.size:
            raise RuntimeError(f"{path} has {size} bytes, {self.size} written")
        path.unlink()
        mib = self.size / MiB
        return {f"seq write {label} (write, fsync)": ("MiB/s", mib / write_s),
                f"seq write {label} + commit": ("MiB/s", mib / (write_s + commit_s)),
                f"seq read {label} cold": ("MiB/s", mib / cold_s),
                f"seq read {label} hot": ("MiB/s", mib / hot_s)}

    def small(self, target: Target) -> dict[str, tuple[str, float]]:
        """--small-files files of 1-8 KiB in 100 directories: create (Python open/write/close), stat
        (`find -ls`), read (Python), delete (`rm -rf`)."""
        if not self._small:
            rng = random.Random(2)
            sizes = [rng.randint(1, 8) * 1024 for _ in range(self.small_files)]
            data = rng.randbytes(sum(sizes))
            offsets = [0]
            for size in sizes:
                offsets.append(offsets[-1] + size)
            self._small = [data[a:b] for a, b in itertools.pairwise(offsets)]
        top = target.root / "small"
        top.mkdir()
        directories = [top / f"d{i:03d}" for i in range(SMALL_DIRECTORIES)]
        for directory in directories:
            directory.mkdir()
        paths = [directories[i % SMALL_DIRECTORIES] / f"f{i:06d}" for i in range(self.small_files)]

        def create() -> None:
            for path, data in zip(paths, self._small, strict=True):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                write_all(fd, data)
                os.close(fd)

        def stat() -> None:
            run(["find", str(top), "-ls"])

        def read() -> None:
            for path, data in zip(paths, self._small, strict=True):
                if len(path.read_bytes()) != len(data):
                    raise RuntimeError(f"{path} is not {len(data)} bytes long")

        def delete() -> None:
            run(["rm", "-rf", str(top)])

        phases = {"create (open/write/close)": create, "stat (find -ls)": stat, "read": read,
                  "delete (rm -rf)": delete}
        return {f"small files 1-8 KiB: {phase}": ("files/s", self.small_files / timed(fn))
                for phase, fn in phases.items()}

    def tree(self, target: Target) -> dict[str, tuple[str, float]]:
        """`tar xf` of a real source tree, then `git init`, `git add -A`, `git commit`, `git status` twice
        (the second one is what an editor or a prompt runs all day)."""
        directory = target.root / "tree"
        directory.mkdir()
        files = tarball_files(self.tarball)
        extract_s = timed(lambda: run(["tar", "xf", str(self.tarball), "-C", str(directory)]))
        worktree = directory / "src"
        git = ["git", "-C", str(worktree), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        run([*git, "init", "-q"])
        add_s = timed(lambda: run([*git, "add", "-A"]))
        commit_s = timed(lambda: run([*git, "commit", "-q", "-m", "tree"]))
        status = [*git, "status", "--porcelain"]
        timed(lambda: run(status))
        again_s = timed(lambda: run(status))
        if dirty := run(status).stdout.strip():
            progress(f"{target.name}: git status after commit is not clean: {dirty.splitlines()[:3]}")
        shutil.rmtree(directory)
        return {f"tar xf {self.tarball.name} ({files} files)": ("files/s", files / extract_s),
                "git add -A of that tree": ("s", add_s),
                "git commit": ("s", commit_s),
                "git status (second)": ("s", again_s)}

    def fio(self, target: Target) -> dict[str, tuple[str, float]]:
        """fio: sequential 1 MiB writes of --size, random 4 KiB writes over --rand-size (psync, one job,
        an fsync at the end of each)."""
        ensure_program("fio", "fio")
        seq = fio(target.root, "seqwrite", "write", "1M", self.size)
        quiet()  # two jobs: the first's background work (vfs commits its file) is not the second's
        rand = fio(target.root, "randwrite", "randwrite", "4k", self.rand_size)
        progress(f"{target.name}: fio seq {seq['bw_bytes'] / 1e6:.0f} MB/s, rand {rand['iops']:.0f} IOPS")
        return {f"fio seq write 1M x {self.size / MiB:g} MiB": ("MB/s", seq["bw_bytes"] / 1e6),
                f"fio rand write 4k over {self.rand_size / MiB:g} MiB": ("IOPS", rand["iops"])}


def fio(directory: Path, name: str, rw: str, bs: str, size: int) -> dict[str, float]:
    """One fio job in directory; its write statistics (fio's JSON), the file deleted afterwards."""
    done = run(["fio", "--output-format=json", f"--name={name}", f"--directory={directory}", f"--rw={rw}",
                f"--bs={bs}", f"--size={size}", "--ioengine=psync", "--end_fsync=1", "--randrepeat=0",
                "--refill_buffers=1", "--numjobs=1"])
    stats: dict[str, float] = json.loads(done.stdout[done.stdout.index("{"):])["jobs"][0]["write"]
    for leftover in directory.glob(f"{name}.*"):
        leftover.unlink()
    return stats


def dirty_mib() -> int:
    """The machine's dirty page cache (/proc/meminfo Dirty), MiB."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("Dirty:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no Dirty line in /proc/meminfo")


def tarball_files(tarball: Path) -> int:
    return sum(1 for line in run(["tar", "tf", str(tarball)]).stdout.splitlines() if not line.endswith("/"))


def source_tarball(tree: Path) -> Path:
    """A tarball of a copy of tree (no git repository: the workload makes one), built once into TARBALL_DIR."""
    tarball = TARBALL_DIR / f"vfs-bench-{tree.name}.tar"
    if tarball.exists():
        return tarball
    progress(f"building {tarball} from {tree}")
    with tempfile.TemporaryDirectory(prefix="vfs-bench-tree-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(tree, src, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "site-packages"))
        partial = tarball.with_suffix(".partial")
        run(["tar", "cf", str(partial), "-C", tmp, "src"])
        partial.rename(tarball)
    return tarball


REQUEST_FILES = 200


def _create(paths: list[Path]) -> None:
    for path in paths:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def _write_close(paths: list[Path]) -> None:
    data = b"x" * 4096
    for path in paths:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        write_all(fd, data)
        os.close(fd)


def _stat(paths: list[Path]) -> None:
    for path in paths:
        os.stat(path)


def _stat_twice(paths: list[Path]) -> None:
    _stat(paths)
    _stat(paths)


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        os.unlink(path)


def _missing(paths: list[Path]) -> None:
    for path in paths:
        for _ in range(2):  # as a shell's PATH search or a build tool's probes: the same name again
            with contextlib.suppress(FileNotFoundError):
                os.stat(path.with_name(path.name + ".missing"))


# operation: (files it needs beforehand, the operation on REQUEST_FILES files)
OPERATIONS: dict[str, tuple[Callable[[list[Path]], None] | None, Callable[[list[Path]], None]]] = {
    "create (open O_CREAT, close)": (None, _create),
    "create + write 4 KiB + close": (None, _write_close),
    "stat (name not cached)": (_write_close, _stat),
    "stat twice (both)": (_write_close, _stat_twice),
    "unlink": (_write_close, _unlink),
    "stat of a missing name, twice": (_write_close, _missing),
}


def count_requests(target: Target, stats_file: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Per operation: {handler: (requests per file, mean microseconds per request)}, from the daemon's
    counters (VFS_FUSE_STATS), with the requests of an idle mount/unmount cycle subtracted.

    Each operation runs in a mount of its own, right after the mount (nothing cached in the kernel)."""

    def cycle(fn: Callable[[], None]) -> dict[str, dict[str, float]]:
        target.stop()
        stats_file.unlink(missing_ok=True)
        os.environ["VFS_FUSE_STATS"] = str(stats_file)
        try:
            target.start()
            fn()
            target.stop()
        finally:
            del os.environ["VFS_FUSE_STATS"]
        deadline = time.monotonic() + 60  # the daemon writes it as it exits
        while not stats_file.exists():
            if time.monotonic() > deadline:
                raise TargetUnavailable(f"{target.name} wrote no request statistics")
            time.sleep(0.05)
        counts: dict[str, dict[str, float]] = json.loads(stats_file.read_text())
        return counts

    directory = target.root / "requests"
    paths = [directory / f"f{i:04d}" for i in range(REQUEST_FILES)]
    idle = cycle(lambda: None)
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for operation, (prepare, fn) in OPERATIONS.items():
        target.start()
        directory.mkdir()
        if prepare is not None:
            prepare(paths)
        target.stop()
        def run_operation(fn: Callable[[list[Path]], None] = fn) -> None:
            os.stat(directory)
            fn(paths)

        counts = cycle(run_operation)
        per_file: dict[str, tuple[float, float]] = {}
        for handler, c in counts.items():
            calls = c["calls"] - idle.get(handler, {}).get("calls", 0)
            if calls > REQUEST_FILES / 20:  # not the few of the mount itself or of `directory`
                per_file[handler] = (calls / REQUEST_FILES, c["seconds"] / c["calls"] * 1e6)
        out[operation] = per_file
        target.start()
        shutil.rmtree(directory)
        target.stop()
    target.start()
    return out


def print_requests(requests: dict[str, dict[str, dict[str, tuple[float, float]]]]) -> None:
    print(f"\n# FUSE requests per operation ({REQUEST_FILES} files, each operation in a fresh mount; "
          "handler: requests per file @ mean µs in the daemon)")
    for name, operations in requests.items():
        for operation, handlers in operations.items():
            total = sum(n for n, _ in handlers.values())
            detail = ", ".join(f"{h} {n:.2g} @{us:.0f}µs" for h, (n, us) in sorted(handlers.items()))
            print(f"{name:12}  {operation:32}  {total:4.1f}  {detail}")


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": MiB, "G": 1 << 30}
    number = text.upper().removesuffix("IB").removesuffix("B")
    unit = number[-1] if number and number[-1] in units else ""
    size = int(float(number.removesuffix(unit)) * units[unit])
    if size < MiB or size % MiB:
        raise argparse.ArgumentTypeError(f"size must be a positive multiple of 1 MiB, not {text!r}")
    return size


def ratio_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(target, baseline) pairs to print: vfs against each other target (rclone first), else each target
    against every simpler one. With vfs, passthrough and rclone, also passthrough/rclone: the most that a
    Python FUSE filesystem reached against rclone in the same run, which bounds vfs/rclone where the
    kernel's requests and pyfuse3's cost per request are what the time goes to."""
    if "vfs" in names:
        order = ["rclone", "plain", "vfs-main", "passthrough"]
        pairs = [("vfs", b) for b in sorted((n for n in names if n != "vfs"),
                                           key=lambda n: order.index(n) if n in order else len(order))]
        if "passthrough" in names and "rclone" in names:
            pairs.append(("passthrough", "rclone"))
        return pairs
    return [(a, b) for i, a in enumerate(names) for b in names[:i]]


def print_table(rows: list[Row], names: list[str]) -> None:
    pairs = ratio_pairs(names)
    header = ["workload", "unit", *names, *(f"{a}/{b}" for a, b in pairs)]
    lines = [header]
    for row in rows:
        cells = [row.workload, row.unit]
        digits = 3 if row.unit == "s" else 0
        cells += [f"{row.values[n]:,.{digits}f}" if n in row.values else "-" for n in names]
        cells += [f"{row.speed(a) / row.speed(b):.2f}" if a in row.values and b in row.values else "-"
                  for a, b in pairs]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        padded = [c.ljust(w) if i == 0 else c.rjust(w)
                  for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        print("  ".join(padded))
    print("ratios are relative speed (1.00 = as fast as the baseline; for seconds, baseline time / time)")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C, so that mounts and temporary directories are cleaned up."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> int:
    try:
        return bench()
    except KeyboardInterrupt:
        progress("interrupted; mounts and temporary directories were cleaned up")
        return 130


def bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--targets", default="plain,passthrough,vfs,rclone", help="comma-separated: %(default)s")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated: %(default)s")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a run of a few minutes: --size 256M --small-files 2000 "
                             "--rand-size 64M (unless given)")
    parser.add_argument("--size", type=parse_size, help="sequential file size (default 1G)")
    parser.add_argument("--rand-size", type=parse_size, help="fio random write file size (default 256M)")
    parser.add_argument("--small-files", type=int, help="number of 1-8 KiB files (default 10000)")
    parser.add_argument("--requests", action="store_true",
                        help="also count the FUSE requests per operation of passthrough and vfs (VFS_FUSE_STATS)")
    parser.add_argument("--tree", type=Path, default=Path(sysconfig.get_paths()["stdlib"]),
                        help="tree to tar for the tree workload (default: the Python stdlib)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload and target; prints medians")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="where temporary targets live")
    parser.add_argument("--vfs-command", default=" ".join(Vfs.command), help="the vfs CLI: %(default)s")
    parser.add_argument("--vfs-main", type=Path, metavar="DIR",
                        help="also run target vfs-main: the vfs package under DIR (DIR/vfs), e.g. main's code")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-warm-memory", action="store_true",
                        help="do not touch the free memory once first (see warm_memory)")
    args = parser.parse_args()
    defaults = (256 * MiB, 64 * MiB, 2000) if args.quick else (1 << 30, 256 * MiB, 10_000)
    args.size = args.size or defaults[0]
    args.rand_size = args.rand_size or defaults[1]
    args.small_files = args.small_files or defaults[2]
    names = args.targets.split(",")
    workload_names = args.workloads.split(",")
    if unknown := [n for n in names if n not in TARGETS]:
        parser.error(f"--targets: unknown {unknown}; known: {list(TARGETS)}")
    if unknown := [w for w in workload_names if w not in WORKLOADS]:
        parser.error(f"--workloads: unknown {unknown}")
    Vfs.command = args.vfs_command.split()
    if args.vfs_main is not None:
        if not (args.vfs_main / "vfs" / "__init__.py").is_file():
            parser.error(f"--vfs-main: no vfs package in {args.vfs_main}")
        VfsMain.source = args.vfs_main.resolve()
        if "vfs-main" not in names:
            names.insert(names.index("vfs") + 1 if "vfs" in names else len(names), "vfs-main")
    if os.geteuid() != 0:
        progress("not root: page caches cannot be dropped, so cold reads are not cold")
    if not args.no_warm_memory:
        warm_memory()

    tarball = source_tarball(args.tree) if "tree" in workload_names else Path()
    workloads = Workloads(args.size, args.small_files, args.rand_size, tarball)
    requests: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    rows: dict[str, Row] = {}
    samples: dict[tuple[str, str], list[float]] = {}
    skipped: dict[str, str] = {}
    with sigterm_as_interrupt(), contextlib.ExitStack() as cleanup:
        base = Path(tempfile.mkdtemp(prefix="vfs-bench-", dir=args.dir))
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        targets: list[Target] = []
        for name in names:
            target = TARGETS[name](base)
            cleanup.callback(target.stop)
            try:
                target.start()
            except TargetUnavailable as e:
                progress(f"skipping {name}: {e}")
                skipped[name] = str(e)
                target.stop()
                continue
            targets.append(target)
        for workload in workload_names:
            for _ in range(args.repeat):
                for target in list(targets):
                    progress(f"{workload} on {target.name}")
                    quiet()  # no earlier writes to flush inside a timed fsync, no other target's work
                    try:
                        figures = getattr(workloads, workload)(target)
                    except (OSError, RuntimeError, subprocess.SubprocessError, TargetUnavailable) as e:
                        progress(f"{workload} on {target.name} failed: {e}; dropping {target.name}")
                        skipped[target.name] = f"{workload} failed: {e}"
                        targets.remove(target)
                        target.stop()
                        continue
                    for row, (unit, value) in figures.items():
                        rows.setdefault(row, Row(row, unit))
                        samples.setdefault((row, target.name), []).append(value)
        for target in targets if args.requests else []:
            if target.name in ("passthrough", "vfs", "vfs-main"):
                progress(f"counting requests on {target.name}")
                try:
                    requests[target.name] = count_requests(target, base / f"{target.name}-requests.json")
                except (OSError, TargetUnavailable) as e:
                    progress(f"counting requests on {target.name} failed: {e}")
    for (row, name), values in samples.items():
        rows[row].values[name] = statistics.median(values)

    shown = [n for n in names if any(n in row.values for row in rows.values())]
    if args.json:
        json.dump({"config": {"size": args.size, "small_files": args.small_files, "rand_size": args.rand_size,
                              "tarball": str(tarball) if "tree" in workload_names else None,
                              "repeat": args.repeat, "dir": str(args.dir), "kernel": platform.release()},
                   "skipped": skipped, "requests": requests,
                   "rows": [{"workload": r.workload, "unit": r.unit, "values": r.values,
                             "ratios": {f"{a}/{b}": r.speed(a) / r.speed(b) for a, b in ratio_pairs(shown)
                                        if a in r.values and b in r.values}}
                            for r in rows.values()]}, sys.stdout, indent=2)
        print()
    else:
        print(f"# kernel {platform.release()}, {os.cpu_count()} CPUs, dir {args.dir}, "
              f"repeat {args.repeat} (medians)")
        for name, why in skipped.items():
            print(f"# {name} skipped: {why}")
        print_table(list(rows.values()), shown)
        if requests:
            print_requests(requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
