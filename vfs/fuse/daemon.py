"""The mount daemon: open the store, recover, mount, serve until unmounted or signalled, commit all.

Shutdown order matters: the kernel is detached first (no new requests), then every dirty staging
file is committed, then the store is closed. SIGTERM and SIGINT are a graceful stop.
"""

from __future__ import annotations

import ctypes
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pyfuse3
import trio

from vfs.control.server import ControlServer
from vfs.fs.filesystem import FileSystem
from vfs.fuse.kernel import KernelCache
from vfs.fuse.operations import Operations, set_read_ahead
from vfs.repository import Repository
from vfs.sync.uploader import open_uploader, report_backlog

log = logging.getLogger(__name__)


def serve(
    store: Path, mountpoint: Path, *, version_interval: float = 300.0, ready: Callable[[], None] = lambda: None
) -> None:
    """Mount `store` at `mountpoint` and serve until unmounted; returns when all data is committed."""
    faulthandler.enable()
    # The loop answers the kernel while commit threads run Python code: with the default 5 ms GIL
    # switch interval every request arriving during a commit waited up to 5 ms for the loop.
    sys.setswitchinterval(0.0005)
    repo = Repository.open(store)
    try:
        trio.run(_serve, repo, mountpoint, version_interval, ready)
    finally:
        repo.close()
    log.info("unmounted %s; all data committed", mountpoint)


async def _serve(repo: Repository, mountpoint: Path, version_interval: float, ready: Callable[[], None]) -> None:
    kernel = KernelCache()

    async def flush_kernel(paths: list[bytes]) -> None:
        # From a thread: the write-back it causes comes to this very loop as WRITE requests.
        # Abandoned on cancel: a stop signal must not wait for a write-back that needs this loop.
        await trio.to_thread.run_sync(_write_back, str(mountpoint), paths, kernel.writing_back, abandon_on_cancel=True)

    fs = FileSystem(repo, version_interval=version_interval, invalidate=kernel.invalidate, flush_kernel=flush_kernel)
    recovered = await fs.recover()
    if recovered:
        log.warning("recovered %d file(s) left uncommitted by an earlier daemon", recovered)
    options = {f"fsname={repo.path}", "subtype=vfs", "default_permissions", "allow_other", "noatime"}
    ops = Operations(fs, kernel)
    pyfuse3.init(ops, str(mountpoint), options)
    # main() returns when the kernel unmounted us, or after terminate() (a signal): then we are
    # still mounted and must detach before committing, so that no process waits on a dead mount.
    kernel_unmounted = False
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(fs.run)
            uploader = None
            if repo.remote is not None:
                uploader = open_uploader(repo)
                await nursery.start(uploader.run)
            await nursery.start(ControlServer(fs, uploader).run)  # before ready: a mounted store answers
            signalled = trio.Event()
            nursery.start_soon(_stop_on_signal, signalled, fs)
            nursery.start_soon(_announce_ready, str(mountpoint), ready)
            await pyfuse3.main()
            kernel_unmounted = not signalled.is_set()
            nursery.cancel_scope.cancel()
    finally:
        pyfuse3.close(unmount=not kernel_unmounted)
        with trio.CancelScope(shield=True):
            await fs.close()
        if repo.remote is not None:
            report_backlog(repo)


def _write_back(mountpoint: str, paths: list[bytes], writing_back: set[int]) -> None:
    """Have the kernel send the dirty pages it caches for our files, and wait until they arrived.

    syncfs(2) starts write-back of the whole mount but on Linux 6.18 returns before a FUSE mount's
    data has reached us (docs/design.md); fsync(2) of a file waits for every write to its inode. So:
    syncfs to start all at once, then fsync each file open for writing through a descriptor of our
    own (Operations answers our own FSYNC at once: the WRITEs are what matter here). A file renamed
    or deleted meanwhile is skipped.
    """
    fd = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:  # through ctypes, which releases the GIL (pyfuse3.syncfs holds it)
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), mountpoint)
    finally:
        os.close(fd)
    root = os.fsencode(mountpoint)
    me = threading.get_native_id()
    writing_back.add(me)
    try:
        _fsync_each(root, paths)
    finally:
        writing_back.discard(me)


def _fsync_each(root: bytes, paths: list[bytes]) -> None:
    for path in paths:
        try:
            fd = os.open(root + b"/" + path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            log.debug("write-back of %r skipped: %s", path, e)
            continue
        try:
            os.fsync(fd)
        except OSError as e:
            log.debug("write-back of %r failed: %s", path, e)
        finally:
            os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)


async def _announce_ready(mountpoint: str, ready: Callable[[], None]) -> None:
    # The mount answers once pyfuse3.main() serves requests: stat it from a thread to be sure.
    await trio.to_thread.run_sync(os.stat, mountpoint)
    await trio.to_thread.run_sync(set_read_ahead, mountpoint)
    log.info("mounted at %s", mountpoint)
    ready()
    sd_notify("READY=1")


def sd_notify(state: str) -> bool:
    """Tell systemd (a Type=notify unit) about our state, e.g. "READY=1"; False when not run by it.

    The protocol: one datagram to the Unix socket named by $NOTIFY_SOCKET (a leading '@' names an
    abstract socket). Errors are logged, never raised: a failed notification must not stop a mount.
    """
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as e:
        log.error("cannot notify systemd at %s: %s", path, e)
        return False
    return True


async def _stop_on_signal(signalled: trio.Event, fs: FileSystem) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("signal %d: unmounting", signum)
            sd_notify("STOPPING=1")
            # Files still open may have written data the kernel caches (writeback cache): have it
            # sent here before the mount is detached, or those writes would never arrive.
            with trio.move_on_after(60):
                await fs.flush_kernel()
            signalled.set()
            pyfuse3.terminate()
            return
