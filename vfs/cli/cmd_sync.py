"""vfs sync [--wait] [--timeout S]: push everything up to now to the store's remote.

With the store mounted the daemon's uploader does it (asked through the control socket; without
--wait the command returns at once). Otherwise this process uploads, and always waits. With --wait,
exit 0 means the remote holds every commit made before the command started; if that cannot be done
within --timeout seconds (endpoint down) the command says why and exits 5. A failure that retrying
will not fix (no such bucket, access denied) is reported at once, also exit 5. If another store has
written the remote since this one last synced, nothing is published over it and the command exits 6
(RemoteConflict) saying which store, when, and what to do. Progress shows on stderr while it waits
(none with --quiet); --json prints the sync status it ended with.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from vfs.cli.cmd_status import describe_error
from vfs.cli.common import add_store_options, passphrase_of, positive_seconds, store_of
from vfs.cli.output import emit
from vfs.cli.progress import Progress
from vfs.control.client import call, daemon_running
from vfs.errors import BackendError, BackendUnavailable, LeaseHeld, RemoteConflict


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("sync", help="upload everything up to now to the remote")
    p.add_argument("--wait", action="store_true", help="return only when the remote holds it (exit 0) or not")
    p.add_argument("--timeout", type=positive_seconds, default=600.0, metavar="S",
                   help="give up after S seconds (600)")
    add_store_options(p)
    p.set_defaults(run=run)
    p.add_argument("--json", action="store_true", help="print the sync status it ended with as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="show no progress")


def run(args: argparse.Namespace) -> int:
    store = store_of(args)
    if daemon_running(store):
        return _through_daemon(store, args)
    return _direct(store, args)


def _through_daemon(store: Path, args: argparse.Namespace) -> int:
    answer = call(store, {"op": "sync"}, timeout=args.timeout)
    if not args.wait:
        return _report(args, answer)
    target = int(answer["target"])
    deadline = time.monotonic() + args.timeout
    bar = Progress("sync", quiet=args.quiet)
    first, first_objects = max(int(answer["backlog_bytes"]), 1), int(answer["backlog_objects"])
    before = _attempt_of(answer)
    try:
        while True:
            st = call(store, {"op": "status"}, timeout=args.timeout)
            bar(max(first - int(st["backlog_bytes"]), 0), first,
                max(first_objects - int(st["backlog_objects"]), 0), first_objects)
            if int(st["rounds_done"]) >= target:
                return _report(args, {**st, "target": target, "synced": True})
            if st.get("conflict"):  # the daemon stopped syncing (LeaseHeld: another store holds the lease)
                raise (LeaseHeld if st.get("conflict_exit_code") == LeaseHeld.exit_code else RemoteConflict)(
                    str(st["error"]))
            if st.get("error_permanent") and _attempt_of(st) != before:
                if st.get("error_exit_code") == LeaseHeld.exit_code:  # the daemon waits for the lease: we do not
                    raise LeaseHeld(str(st["error"]))
                # The daemon retries it (the bucket may be created, a policy fixed), but not in time for us.
                raise BackendError(f"sync cannot finish: {describe_error(st)}")
            if time.monotonic() > deadline:
                raise _timed_out(args.timeout, st)
            time.sleep(0.2)
    finally:
        bar.close()


def _attempt_of(st: dict[str, Any]) -> tuple[object, object]:
    """Which failed attempt a status reports: a failure met before the request is not its answer."""
    return st.get("error_since_ns"), st.get("error_attempts")


def _timed_out(timeout: float, st: dict[str, Any]) -> BackendError:
    why = describe_error(st) if st.get("error") else "still uploading"
    return BackendUnavailable(f"sync did not finish within {timeout:g}s: {why}")


def _direct(store: Path, args: argparse.Namespace) -> int:
    import trio

    from vfs.compose import open_repository
    from vfs.maintenance.service import Maintenance

    timeout = args.timeout
    with open_repository(store, passphrase=passphrase_of(args)) as repo:
        bar = Progress("sync", quiet=args.quiet)
        try:
            left = trio.run(lambda: Maintenance(repo).sync_now(limit=timeout, progress=bar))
        finally:
            bar.close()
        answer = Maintenance(repo).status()
    if left is not None:
        raise _timed_out(timeout, left)
    return _report(args, {**answer, "synced": True})


def _report(args: argparse.Namespace, answer: dict[str, Any]) -> int:
    """Print the status the sync ended with as JSON (--json); a person is told nothing when it worked."""
    answer.pop("ok", None)
    emit(args, answer, lambda a: "")
    return 0
