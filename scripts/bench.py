"""Filesystem benchmark: the same workloads on several targets in one run, with ratios between them.

A target is a directory the workloads run in, plus what it takes to make reads cold and writes durable:
  plain        a directory on the same disk (the ext4 ceiling);
  passthrough  scripts/passthrough.py over a fresh directory (the ceiling for a Python FUSE filesystem);
  vfs          `vfs init STORE`, then `vfs mount STORE MOUNTPOINT`; skipped, with the reason, when that fails.

Workloads (each runs on every target before the next starts, so that machine noise hits all of them):
  seq    write --size bytes in 1 MiB writes of incompressible, never-repeating data, fsync, close ("write");
         the same plus the target's commit ("write+commit": `vfs umount`, which returns once everything is
         committed, then a remount; nothing for the other targets); read it back in 1 MiB reads cold (FUSE
         targets remounted, page cache dropped) and hot (again, at once).
  small  --small-files files of 4 KiB in one directory: create, stat, read, delete, each phase timed alone,
         warm (no cache drop between phases, as an application would see them).
  tree   a tarball of a real tree (default: the Python stdlib) that is a git repository (committed, gc'ed),
         built once into /tmp: `tar xf` on the target, then `git status` twice (the first one refreshes
         the index, since extraction changed every inode and ctime).

Ratios are relative speed: 1.00 = as fast as the baseline, 0.50 = half as fast, whatever the unit.
This is a benchmark, not a test: it prints figures and exits 0 unless it could not run at all.
Dropping the page cache needs root; without it "cold" reads are not cold.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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
SMALL_FILE_SIZE = 4096
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


def run(cmd: list[str], timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


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

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.store = base / "vfs-store"
        self.mounted = False

    def _vfs(self, *args: str, timeout: float = 600) -> None:
        try:
            done = run([*self.command, *args], timeout=timeout, check=False)
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


TARGETS: dict[str, type[Target]] = {t.name: t for t in (Plain, Passthrough, Vfs)}


@dataclass
class Row:
    """One figure of one workload, per target."""

    workload: str
    unit: str  # MiB/s, files/s: higher is better; s: lower is better
    values: dict[str, float] = field(default_factory=dict)

    def speed(self, target: str) -> float:
        value = self.values[target]
        return 1 / value if self.unit == "s" else value


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

    def __init__(self, size: int, small_files: int, tarball: Path) -> None:
        self.size = size
        self.small_files = small_files
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
                for block in self.blocks():
                    write_all(fd, block)
                os.fsync(fd)
            finally:
                os.close(fd)

        self.blocks()
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
        if not self._small:
            data = random.Random(2).randbytes(SMALL_FILE_SIZE * self.small_files)
            self._small = [data[i:i + SMALL_FILE_SIZE] for i in range(0, len(data), SMALL_FILE_SIZE)]
        directory = target.root / "small"
        directory.mkdir()
        paths = [directory / f"f{i:06d}" for i in range(self.small_files)]

        def create() -> None:
            for path, data in zip(paths, self._small, strict=True):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                write_all(fd, data)
                os.close(fd)

        def stat() -> None:
            for path in paths:
                os.stat(path)

        def read() -> None:
            for path in paths:
                if len(path.read_bytes()) != SMALL_FILE_SIZE:
                    raise RuntimeError(f"{path} is not {SMALL_FILE_SIZE} bytes long")

        def delete() -> None:
            for path in paths:
                os.unlink(path)

        phases = {"create": create, "stat": stat, "read": read, "delete": delete}
        rates = {f"small files 4 KiB: {phase}": ("files/s", self.small_files / timed(fn))
                 for phase, fn in phases.items()}
        directory.rmdir()
        return rates

    def tree(self, target: Target) -> dict[str, tuple[str, float]]:
        directory = target.root / "tree"
        directory.mkdir()
        extract_s = timed(lambda: run(["tar", "xf", str(self.tarball), "-C", str(directory)]))
        worktree = directory / "src"
        status = ["git", "-C", str(worktree), "status", "--porcelain"]
        first_s = timed(lambda: run(status))
        again_s = timed(lambda: run(status))
        if dirty := run(status).stdout.strip():
            progress(f"{target.name}: git status after extraction is not clean: {dirty.splitlines()[:3]}")
        shutil.rmtree(directory)
        return {f"tar xf {self.tarball.name}": ("s", extract_s),
                "git status (first)": ("s", first_s),
                "git status (again)": ("s", again_s)}


def source_tarball(tree: Path) -> Path:
    """A tarball of a git repository holding a copy of tree, built once into TARBALL_DIR."""
    tarball = TARBALL_DIR / f"vfs-bench-{tree.name}-git.tar"
    if tarball.exists():
        return tarball
    progress(f"building {tarball} from {tree}")
    with tempfile.TemporaryDirectory(prefix="vfs-bench-tree-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(tree, src, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "site-packages"))
        git = ["git", "-C", str(src), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "tree"], ["gc", "-q"]):
            run([*git, *args])
        partial = tarball.with_suffix(".partial")
        run(["tar", "cf", str(partial), "-C", tmp, "src"])
        partial.rename(tarball)
    return tarball


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": MiB, "G": 1 << 30}
    number = text.upper().removesuffix("IB").removesuffix("B")
    unit = number[-1] if number and number[-1] in units else ""
    size = int(float(number.removesuffix(unit)) * units[unit])
    if size < MiB or size % MiB:
        raise argparse.ArgumentTypeError(f"size must be a positive multiple of 1 MiB, not {text!r}")
    return size


def ratio_pairs(names: list[str]) -> list[tuple[str, str]]:
    """(target, baseline) pairs to print: each target against every simpler one."""
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
    parser.add_argument("--targets", default="plain,passthrough,vfs", help="comma-separated: %(default)s")
    parser.add_argument("--workloads", default="seq,small,tree", help="comma-separated: %(default)s")
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="sequential file size (default 1G)")
    parser.add_argument("--small-files", type=int, default=10_000, help="number of 4 KiB files")
    parser.add_argument("--tree", type=Path, default=Path(sysconfig.get_paths()["stdlib"]),
                        help="tree to tar for the tree workload (default: the Python stdlib)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload and target; prints medians")
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="where temporary targets live")
    parser.add_argument("--vfs-command", default=" ".join(Vfs.command), help="the vfs CLI: %(default)s")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    names = args.targets.split(",")
    workload_names = args.workloads.split(",")
    if unknown := [n for n in names if n not in TARGETS]:
        parser.error(f"--targets: unknown {unknown}; known: {list(TARGETS)}")
    if unknown := [w for w in workload_names if w not in ("seq", "small", "tree")]:
        parser.error(f"--workloads: unknown {unknown}")
    Vfs.command = args.vfs_command.split()
    if os.geteuid() != 0:
        progress("not root: page caches cannot be dropped, so cold reads are not cold")

    tarball = source_tarball(args.tree) if "tree" in workload_names else Path()
    workloads = Workloads(args.size, args.small_files, tarball)
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
                    os.sync()  # no earlier writes (ours or the tarball's) to flush inside a timed fsync
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
    for (row, name), values in samples.items():
        rows[row].values[name] = statistics.median(values)

    shown = [n for n in names if any(n in row.values for row in rows.values())]
    if args.json:
        json.dump({"config": {"size": args.size, "small_files": args.small_files,
                              "tarball": str(tarball) if "tree" in workload_names else None,
                              "repeat": args.repeat, "dir": str(args.dir), "kernel": platform.release()},
                   "skipped": skipped,
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
