"""The follower mount: a read-only mount of a remote volume's newest state, refreshed in the background.

The same stack as a writer's mount (`vfs.compose.mount`) over the follower's cache store (a lazy clone,
see `vfs mount --follow`), with these differences: the filesystem is read-only (and so is the kernel's
mount: writes are EROFS before they reach us), no committer work and no uploader, and a `Follower` task
installs each newer checkpoint and makes the kernel forget what it changed. Without the writeback
cache: a read-only mount gains nothing from it, and with it the kernel would keep a file's cached size
after a refresh changed it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from pathlib import Path

import trio

from vfs.compose import open_repository
from vfs.compose.mount import announce_ready, serve, shielded, stop_on_signal
from vfs.control.server import ControlServer
from vfs.fs.filesystem import FileSystem
from vfs.fuse.kernel import KernelCache
from vfs.fuse.operations import Operations
from vfs.fuse.session import KernelSession
from vfs.repository import PassphraseSource
from vfs.sync.follow import Follower, Names
from vfs.sync.remote import open_store_backend, require_remote
from vfs.types import InodeNo

log = logging.getLogger(__name__)


def serve_follow(
    store: Path, mountpoint: Path, *, interval: float, ready: Callable[[], None] = lambda: None,
    passphrase: PassphraseSource | None = None,
) -> None:
    """Mount the follower store `store` at `mountpoint`, refreshing every `interval` seconds, until unmounted."""
    serve(functools.partial(run_follow, store, mountpoint, interval=interval, ready=ready, passphrase=passphrase))
    log.info("unmounted %s", mountpoint)


async def run_follow(
    store: Path, mountpoint: Path, *, interval: float, ready: Callable[[], None] = lambda: None,
    passphrase: PassphraseSource | None = None,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        repo = open_repository(store, passphrase=passphrase)
        stack.callback(repo.close)
        url = require_remote(repo).url
        backend = stack.enter_context(open_store_backend(repo))
        kernel = KernelCache(mountpoint)
        fs = FileSystem(repo, invalidate=kernel.invalidate,
                        read_only=f"a follower of {url} is read-only (the writer writes; 'vfs lease take' makes"
                                  " a store the writer)")
        stack.push_async_callback(shielded, fs.close)

        async def changed(inos: set[InodeNo], names: Names) -> None:
            kernel_inos = [*fs.changed_by_refresh(inos), *fs.views.listings_of(inos)]
            await trio.to_thread.run_sync(_invalidate_all, kernel, kernel_inos, abandon_on_cancel=True)
            await kernel.forget_names(names)

        follower = Follower(repo, backend, interval=interval, changed=changed, installing=fs.refreshing)
        ops = Operations(fs, kernel)
        ops.enable_writeback_cache = False
        session = stack.enter_context(KernelSession(ops, mountpoint, fsname=str(repo.path), read_only=True))
        tasks = await stack.enter_async_context(trio.open_nursery())
        await tasks.start(fs.run)
        await tasks.start(follower.run)
        await tasks.start(ControlServer(fs, None, follower=follower).run)
        tasks.start_soon(stop_on_signal, session, fs)  # (a read-only mount has no writes to fetch first)
        tasks.start_soon(announce_ready, session, ready)
        await session.serve()
        tasks.cancel_scope.cancel()


def _invalidate_all(kernel: KernelCache, inos: list[InodeNo]) -> None:
    for ino in inos:
        kernel.invalidate(ino)
