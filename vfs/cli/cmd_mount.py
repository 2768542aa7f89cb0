"""vfs mount [STORE] MOUNTPOINT, vfs mount --follow s3://BUCKET/PREFIX MOUNTPOINT, and vfs umount MOUNTPOINT.

`vfs mount` starts the daemon in the background and returns once the mount answers (or prints why
it could not). The daemon is started first and imports what it serves with (half a second of trio,
pyfuse3, the catalog and the store) while `vfs mount` checks the store and asks for its passphrase; it
opens the store only when told to start, so a store that fails the check is never touched by it.
Without STORE it mounts the default store, creating it (and saying so on stderr) the first time.
`vfs umount` detaches the mount and waits until the daemon has committed everything and released the
store.

`--follow` mounts a read-only view of a remote volume's newest state (a follower: see
`vfs.compose.follow`), kept in a cache directory that is a lazy clone of the volume, made on first use
and brought up to date before the mount answers; it is refreshed every `--refresh` seconds and by
`vfs refresh MOUNTPOINT`.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vfs.api.location import default_follow_cache
from vfs.cli import cmd_remote
from vfs.cli.common import add_passphrase_options, default_store, find_mount, passphrase_of, positive_seconds
from vfs.errors import NotAStore, StoreError, UsageError, VfsError
from vfs.fsutil import PRIVATE_FILE

log = logging.getLogger(__name__)
LOG_FILE = "vfs.log"


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "mount", help="mount a store as a directory",
        description="Mount STORE at MOUNTPOINT (an empty directory) and return once the mount answers. Without"
                    " STORE, the default store ($VFS_HOME, else ~/.local/share/vfs/default) is mounted, and created"
                    " first if it does not exist yet (a line on stderr says so: 'vfs: created store PATH').")
    p.add_argument("paths", nargs="+", metavar="[STORE] MOUNTPOINT",
                   help="store (optional) and mount point; with --follow: s3://BUCKET/PREFIX and mount point")
    p.add_argument("-f", "--foreground", action="store_true", help="stay attached and log to stderr")
    p.add_argument("--version-interval", type=positive_seconds, default=300.0, metavar="SECONDS",
                   help="record a version of a file kept open and dirty at least this often (default 300)")
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    # The word to start, with an encrypted store's passphrase, from `vfs mount` to its daemon through a
    # pipe (never argv or environ): see _Starting.
    p.add_argument("--start-fd", type=int, help=argparse.SUPPRESS)
    add_passphrase_options(p)
    f = p.add_argument_group("read-only follower of a remote volume (--follow)")
    f.add_argument("--follow", action="store_true",
                   help="mount the newest state of the remote volume s3://BUCKET/PREFIX, read-only, refreshed")
    f.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="where the follower keeps the volume's catalog and the data it read (default:"
                        " ~/.cache/vfs/follow/<bucket and prefix>)")
    f.add_argument("--refresh", type=positive_seconds, default=10.0, metavar="SECONDS",
                   help="look for a newer state this often (default 10)")
    cmd_remote.add_remote_options(p)  # --endpoint-url, --region, --cache-size: with --follow only
    p.set_defaults(run=run_mount)

    u: argparse.ArgumentParser = sub.add_parser("umount", help="unmount, after committing everything")
    u.add_argument("mountpoint", type=Path)
    u.set_defaults(run=run_umount)


def _check_mountpoint(mnt: Path) -> None:
    _detach_dead_mount(mnt)
    if not mnt.exists():
        raise UsageError(f"mount point {mnt} does not exist")
    if not mnt.is_dir():
        raise UsageError(f"mount point {mnt} is not a directory")
    if any(mnt.iterdir()):
        raise UsageError(f"mount point {mnt} is not empty")
    if not os.path.exists("/dev/fuse"):
        raise VfsError("/dev/fuse is missing: load the fuse kernel module (modprobe fuse) or install fuse3")


def _detach_dead_mount(mnt: Path) -> None:
    """Detach a vfs mount left at `mnt` by a daemon that died (kill -9, OOM), so a new mount takes over.

    Such a mount answers every access with ENOTCONN (ECONNABORTED once the kernel aborted the
    connection) until it is detached; nothing can be lost by
    detaching it, since its daemon is gone (what it left in staging/ is recovered by the new one).
    """
    try:
        os.listdir(mnt)
        return
    except OSError as e:
        if e.errno not in (errno.ENOTCONN, errno.ECONNABORTED):
            return  # missing, not a directory, ...: reported by the checks that follow
    try:
        find_mount(mnt)
    except UsageError:
        raise UsageError(f"mount point {mnt} is a dead mount of another filesystem; detach it with"
                         f" 'fusermount3 -uz {mnt}'") from None
    done = subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"mount point {mnt} is the dead mount of a vfs daemon that is gone and cannot be"
                         f" detached: {done.stderr.strip() or 'fusermount3 failed'}")
    log.warning("detached the dead mount at %s left by a vfs daemon that died", mnt)


def run_mount(args: argparse.Namespace) -> int:
    if args.follow:
        return _run_follow(args)
    for given in ("cache_dir", "endpoint_url", "region", "cache_size"):
        if getattr(args, given) is not None:
            raise UsageError(f"--{given.replace('_', '-')} is an option of --follow (a store has its remote's"
                             " settings: 'vfs remote set')")
    if len(args.paths) > 2:
        raise UsageError("expected [STORE] MOUNTPOINT")
    mnt = Path(args.paths[-1]).absolute()
    store = Path(args.paths[0]).absolute() if len(args.paths) == 2 else default_store().absolute()
    if args.ready_fd is not None:
        return _daemon(store, mnt, args)
    _check_mountpoint(mnt)  # before the default store is created: a wrong mount point leaves nothing behind
    if len(args.paths) == 1:
        _create_if_missing(store)

    def check(passphrase: Callable[[], bytes]) -> None:
        from vfs.compose import open_repository

        # A clear error now if it is no store, or the passphrase opens none of its keys (exit 7).
        open_repository(store, lock=False, passphrase=passphrase).close()

    return _start(store, mnt, args, check)


def _run_follow(args: argparse.Namespace) -> int:
    if len(args.paths) != 2:
        raise UsageError("expected --follow s3://BUCKET/PREFIX MOUNTPOINT")
    args.url = args.paths[0]
    remote = cmd_remote.remote_from_args(args)
    mnt = Path(args.paths[1]).absolute()
    cache_dir = (args.cache_dir or default_follow_cache(remote.url)).absolute()
    if args.ready_fd is not None:
        return _daemon(cache_dir, mnt, args)
    cache_size = None if args.cache_size is None else cmd_remote.parse_size(args.cache_size)
    _check_mountpoint(mnt)

    def check(passphrase: Callable[[], bytes]) -> None:
        from vfs.compose import open_follower_store

        open_follower_store(remote, cache_dir, passphrase=passphrase, cache_size=cache_size).close()

    return _start(cache_dir, mnt, args, check)


def _start(store: Path, mnt: Path, args: argparse.Namespace, check: Callable[[Callable[[], bytes]], None]) -> int:
    """Run `check` (which opens the store as the daemon will, given the passphrase source), then serve the
    store: here with --foreground, else in a daemon started before the check, so that its imports and the
    check run at once."""
    asked: list[bytes] = []  # the passphrase, if the store turns out to be encrypted

    def passphrase() -> bytes:
        asked.append(passphrase_of(args)())
        return asked[-1]

    if args.foreground:
        check(passphrase)
        return _daemon(store, mnt, args, asked[-1] if asked else None)
    daemon = _Starting(store, mnt, args)
    try:
        check(passphrase)
    except BaseException:
        daemon.cancel()
        raise
    return daemon.start(asked[-1] if asked else None)


def _create_if_missing(store: Path) -> None:
    """Create the default store on its first mount, saying so: the user named no store, and a new one
    must not appear unannounced (a typo in $VFS_HOME would otherwise mount an empty volume silently)."""
    from vfs.compose import init_repository, open_repository

    try:
        open_repository(store, lock=False).close()
    except NotAStore:
        init_repository(store).close()
        print(f"vfs: created store {store}", file=sys.stderr)


def _daemon(store: Path, mnt: Path, args: argparse.Namespace, secret: bytes | None = None) -> int:
    """Serve `store` at `mnt` until unmounted: in the foreground, or as the daemon `_Starting` started, which
    first waits for the word to start (and an encrypted store's passphrase) on --start-fd."""
    # Imported before waiting for the word to start: while `vfs mount` checks the store.
    from vfs.compose.mount import serve_mount
    from vfs.log import setup_logging

    if args.follow:
        from vfs.compose.follow import serve_follow
    if args.start_fd is not None:
        with os.fdopen(args.start_fd, "rb") as f:
            word = f.read()
        if not word:
            return 0  # `vfs mount` found the store unusable and said why (or was interrupted): nothing to serve
        secret = word[1:] if word.startswith(b"+") else None
        _log_to(store / LOG_FILE)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    ready_fd = args.ready_fd

    def ready() -> None:
        if ready_fd is not None:
            os.write(ready_fd, b"ok\n")
            os.close(ready_fd)

    try:
        source = (lambda: secret) if secret is not None else None
        if args.follow:
            serve_follow(store, mnt, interval=args.refresh, ready=ready, passphrase=source)
        else:
            serve_mount(store, mnt, version_interval=args.version_interval, ready=ready, passphrase=source)
    except VfsError as e:
        if ready_fd is not None:
            try:
                os.write(ready_fd, f"{e}\n".encode())
            except OSError:
                pass
        raise
    return 0


class _Starting:
    """A daemon started to serve `store` at `mnt`, waiting for the word to start.

    It is told on a pipe of its own (--start-fd): "+" and the passphrase, or "-" for none; the pipe closed
    without a word (the check failed, `vfs mount` was interrupted or killed) and it exits without opening
    the store. Until told, its stderr is that of `vfs mount` (a daemon that cannot even start says why on
    the terminal); from then on it appends to STORE/vfs.log, which only a checked store gets.
    """

    def __init__(self, store: Path, mnt: Path, args: argparse.Namespace) -> None:
        self.store = store
        ready_r, ready_w = os.pipe()
        start_r, self._start_w = os.pipe()
        cmd = [sys.executable, "-m", "vfs.cli.main", *(["-v"] if args.verbose else []), "mount"]
        if args.follow:  # the store is the follower's cache directory
            cmd += ["--follow", args.url, str(mnt), "--cache-dir", str(store), "--refresh", str(args.refresh),
                    *(["--endpoint-url", args.endpoint_url] if args.endpoint_url else []),
                    *(["--region", args.region] if args.region else [])]
        else:
            cmd += [str(store), str(mnt), "--version-interval", str(args.version_interval)]
        cmd += ["--ready-fd", str(ready_w), "--start-fd", str(start_r)]
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          pass_fds=[ready_w, start_r], start_new_session=True)
        except BaseException:
            for fd in (ready_r, self._start_w):
                os.close(fd)
            raise
        finally:
            os.close(ready_w)
            os.close(start_r)
        self._ready_r = ready_r

    def cancel(self) -> None:
        """Stop the daemon, which has touched nothing yet."""
        os.close(self._start_w)
        os.close(self._ready_r)
        self._proc.kill()
        self._proc.wait()

    def start(self, secret: bytes | None) -> int:
        """Have the daemon serve the checked store; return once the mount answers (VfsError: why it does not)."""
        try:
            # At most 4 KiB (passwords.py): fits in the pipe whether or not the daemon reads yet.
            os.write(self._start_w, b"-" if secret is None else b"+" + secret)
        except BrokenPipeError:  # the daemon died starting (its error went to stderr): reported below
            pass
        finally:
            os.close(self._start_w)
        with os.fdopen(self._ready_r, "rb") as reader:
            answer = reader.read().decode(errors="replace").strip()
        if answer == "ok":
            return 0
        code = self._proc.wait()
        raise VfsError(answer or f"the daemon exited with status {code}; see {self.store / LOG_FILE}")


def _log_to(path: Path) -> None:
    """Send this process's stdout and stderr to the file `path` (appended, created private)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def run_umount(args: argparse.Namespace) -> int:
    store = find_mount(args.mountpoint)
    done = subprocess.run(["fusermount3", "-u", str(args.mountpoint)], capture_output=True, text=True)
    if done.returncode != 0:
        raise StoreError(f"cannot unmount {args.mountpoint}: {done.stderr.strip() or 'fusermount3 failed'}")
    # The daemon holds the store's lock until everything is committed and the store is closed.
    try:
        fd = os.open(store / "lock", os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)
    return 0
