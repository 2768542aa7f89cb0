"""The mount: builds the daemon's objects, wires them together, and takes them down in order.

A mount is a stack of resources, each registered for cleanup as soon as it is acquired (an
AsyncExitStack, left in reverse): repository -> filesystem (recovered) -> kernel session -> tasks
(committer, uploader, control server, signal handling). So the shutdown order is: the tasks stop, the
kernel is detached (no new requests, no process left waiting on a dead mount), every dirty staging
file is committed, what the remote still lacks is reported, and the store is closed. SIGTERM, SIGINT
and SIGHUP are a graceful stop.
"""

from __future__ import annotations

import contextlib
import faulthandler
import functools
import logging
import resource
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from vfs.compose import open_repository
from vfs.control.server import ControlServer
from vfs.fs.filesystem import FileSystem
from vfs.fuse.kernel import KernelCache
from vfs.fuse.operations import Operations
from vfs.fuse.session import KernelSession
from vfs.maintenance.service import Maintenance
from vfs.repository import PassphraseSource
from vfs.sync.uploader import open_uploader, report_backlog
from vfs.systemd import sd_notify

log = logging.getLogger(__name__)


def serve_mount(
    store: Path, mountpoint: Path, *, version_interval: float = 300.0, ready: Callable[[], None] = lambda: None,
    passphrase: PassphraseSource | None = None,
) -> None:
    """Mount `store` at `mountpoint` and serve until unmounted; returns when all data is committed."""
    serve(functools.partial(run_mount, store, mountpoint, version_interval=version_interval, ready=ready,
                            passphrase=passphrase))
    log.info("unmounted %s; all data committed", mountpoint)


def serve(run: Callable[[], Awaitable[None]]) -> None:
    """Run a mount's daemon (`run_mount`, or a follower's `run_follow`) on a trio loop of its own."""
    faulthandler.enable()
    raise_open_files_limit()
    # The loop answers the kernel while commit threads run Python code: with the default 5 ms GIL
    # switch interval every request arriving during a commit waited up to 5 ms for the loop.
    sys.setswitchinterval(0.0005)
    trio.run(run)


def raise_open_files_limit() -> None:
    """Let the daemon open as many files as the hard limit allows: every file with uncommitted content
    holds its staging file open until committed, and a service's soft limit is often 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20  # (the kernel's nr_open caps it)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as e:
            log.info("could not raise the open files limit from %d to %d: %s", soft, wanted, e)


async def run_mount(
    store: Path, mountpoint: Path, *, version_interval: float = 300.0, ready: Callable[[], None] = lambda: None,
    passphrase: PassphraseSource | None = None,
) -> None:
    """Open `store`, recover, mount it at `mountpoint` and serve until unmounted or signalled; then
    commit all and close (the order: see the module's docstring)."""
    async with contextlib.AsyncExitStack() as stack:
        repo = open_repository(store, passphrase=passphrase)  # an encrypted store's keys live in memory only
        stack.callback(repo.close)
        if repo.remote is not None:
            stack.callback(report_backlog, repo)  # once all is committed, as the store closes
        kernel = KernelCache(mountpoint)
        fs = FileSystem(repo, version_interval=version_interval, invalidate=kernel.invalidate,
                        flush_kernel=kernel.write_back)
        recovered = await fs.recover()
        if recovered:
            log.warning("recovered %d file(s) left uncommitted by an earlier daemon", recovered)
        stack.push_async_callback(shielded, fs.close)  # commits all: after the kernel is detached
        session = stack.enter_context(KernelSession(Operations(fs, kernel), mountpoint, fsname=str(repo.path)))
        tasks = await stack.enter_async_context(trio.open_nursery())
        await tasks.start(fs.run)
        uploader = None
        if repo.remote is not None:
            uploader = open_uploader(repo)
            await tasks.start(uploader.run)
        # Before ready: a mounted store answers.
        await tasks.start(ControlServer(fs, Maintenance.of_mount(fs, uploader), forget_names=kernel.forget_names).run)
        tasks.start_soon(stop_on_signal, session, fs)
        tasks.start_soon(announce_ready, session, ready)
        await session.serve()
        tasks.cancel_scope.cancel()


async def shielded(close: Callable[[], Awaitable[None]]) -> None:
    # Committing at shutdown must finish even when the mount is being cancelled (a second signal).
    with trio.CancelScope(shield=True):
        await close()


async def announce_ready(session: KernelSession, ready: Callable[[], None]) -> None:
    await session.wait_answering()
    log.info("mounted at %s", session.mountpoint)
    ready()
    sd_notify("READY=1")


async def stop_on_signal(session: KernelSession, fs: FileSystem) -> None:
    """On SIGTERM, SIGINT or SIGHUP: have the kernel send what it caches of open files, then unmount."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("signal %d: unmounting", signum)
            sd_notify("STOPPING=1")
            # Files still open may have written data the kernel caches (writeback cache): have it
            # sent here before the mount is detached, or those writes would never arrive.
            with trio.move_on_after(60):
                await fs.flush_kernel()
            session.terminate()
            return
