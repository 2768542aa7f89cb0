"""vfs sync [--wait] [--timeout S]: push everything up to now to the store's remote.

With the store mounted the daemon's uploader does it (asked through the control socket; without
--wait the command returns at once). Otherwise this process uploads, and always waits. With --wait,
exit 0 means the remote holds every commit made before the command started; if that cannot be done
within --timeout seconds (endpoint down, access denied) the command says why and exits non-zero
(5). If another store has written the remote since this one last synced, nothing is published over
it and the command exits 6 (RemoteConflict) saying which store, when, and what to do.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import trio

from vfs.cli.cmd_status import describe_error
from vfs.cli.common import add_store_options, store_of
from vfs.cli.progress import Progress
from vfs.compose import open_repository
from vfs.control.client import call, daemon_running
from vfs.errors import BackendError, BackendUnavailable, RemoteConflict, StoreError, UsageError


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("sync", help="upload everything up to now to the remote")
    p.add_argument("--wait", action="store_true", help="return only when the remote holds it (exit 0) or not")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S", help="give up after S seconds (600)")
    add_store_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UsageError("timeout must be positive")
    store = store_of(args)
    if daemon_running(store):
        return _through_daemon(store, args)
    return _direct(store, args.timeout)


def _through_daemon(store: Path, args: argparse.Namespace) -> int:
    answer = call(store, {"op": "sync"}, timeout=args.timeout)
    if not args.wait:
        return 0
    target = int(answer["target"])
    deadline = time.monotonic() + args.timeout
    bar = Progress("sync")
    first = max(int(answer["backlog_bytes"]), 1)
    try:
        while True:
            st = call(store, {"op": "status"}, timeout=args.timeout)
            bar(max(first - int(st["backlog_bytes"]), 0), first)
            if int(st["rounds_done"]) >= target:
                return 0
            if st.get("conflict"):  # the daemon stopped syncing
                raise RemoteConflict(str(st["error"]))
            if time.monotonic() > deadline:
                raise _timed_out(args.timeout, st)
            time.sleep(0.2)
    finally:
        bar.close()


def _timed_out(timeout: float, st: dict[str, Any]) -> BackendError:
    why = describe_error(st) if st.get("error") else "still uploading"
    return BackendUnavailable(f"sync did not finish within {timeout:g}s: {why}")


def _direct(store: Path, timeout: float) -> int:
    from vfs.sync.uploader import open_uploader

    with open_repository(store) as repo:
        if repo.remote is None:
            raise UsageError(f"store {store} has no remote; set one with 'vfs remote set'")
        uploader = open_uploader(repo, max_pause=5.0)
        bar = Progress("sync")
        try:
            trio.run(_sync_direct, uploader, bar, timeout)
        finally:
            bar.close()
            uploader.backend.close()
    return 0


async def _sync_direct(uploader: Any, bar: Progress, limit: float) -> None:
    first = max(uploader.status()["backlog_bytes"], 1)
    final: BackendError | None = None  # raised outside the nursery: an exception group has no one-line message
    async with trio.open_nursery() as nursery:
        async def show() -> None:
            while True:
                bar(max(first - uploader.status()["backlog_bytes"], 0), first)
                await trio.sleep(0.25)

        nursery.start_soon(show)
        with trio.move_on_after(limit) as scope:
            pause = 0.5
            while True:
                try:
                    await uploader.round()
                    bar(first, first)
                    break
                except (BackendError, StoreError, OSError) as e:
                    if isinstance(e, BackendError) and not e.transient:
                        final = e
                        break
                    await trio.sleep(pause)
                    pause = min(pause * 2, 10.0)
        nursery.cancel_scope.cancel()
    if final is not None:
        raise final
    if scope.cancelled_caught:
        uploader.save_failure()  # the round was cut short: `vfs status` shows what it met
        raise _timed_out(limit, uploader.status())
