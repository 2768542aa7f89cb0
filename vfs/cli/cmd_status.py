"""vfs status [--json]: the remote sync state of a store (backlog, last sync, current failure).

Mounted, the daemon answers: the failure its requests meet now (what, since when, how many attempts
failed), or that it stopped syncing because another store wrote the remote; and whether the store is
the volume's writer (holds the writer lease), or says plainly that another store took it. Unmounted,
what the last sync of the store met, until one succeeds. A follower mount (`vfs mount --follow`)
answers what it follows instead: the checkpoint it shows, who wrote it, when it last looked, and the
failure of its refreshes while they fail. A store without a remote is not an error: "no remote" (and
`"remote": null`), exit 0, mounted or not.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfs.cli.common import add_store_options, store_of
from vfs.control.client import call, daemon_running
from vfs.fs.history import format_time


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("status", help="show what the remote still lacks")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_store_options(p)
    p.set_defaults(run=run)


def status(store: Any) -> dict[str, Any]:
    if daemon_running(store):
        answer = call(store, {"op": "status"})
        answer.pop("ok", None)
        return answer
    from vfs.compose import open_repository
    from vfs.maintenance.service import Maintenance

    with open_repository(store, lock=False) as repo:
        return Maintenance(repo).status()


def describe_error(st: dict[str, Any]) -> str:
    """The current failure of a status, in one line: what, since when, how many attempts failed."""
    if not st.get("error"):
        return "none"
    since = st.get("error_since_ns")
    if st.get("conflict"):
        return f"{st['error']} (since {format_time(since)})" if since else str(st["error"])
    n = st.get("error_attempts") or 0
    when = f"failing since {format_time(since)}, " if since else ""
    return f"{st['error']} ({when}{n} failed attempt{'s' if n != 1 else ''})"


def describe_lease(lease: dict[str, Any]) -> str:
    """Whether the store is the volume's writer, in one line (as it last knew: `vfs lease status` asks)."""
    if lease.get("lost"):
        return f"no: {lease['lost']}"
    if lease.get("writer"):
        until = lease.get("expires_ns")
        return f"yes (lease epoch {lease.get('epoch')}" + (f", until {format_time(until)})" if until else ")")
    return "no (it takes the writer lease when it syncs, if no other store holds it)"


def run(args: argparse.Namespace) -> int:
    st = status(store_of(args))
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    if st.get("follower") is not None:
        _print_follower(st["follower"])
        return 0
    if st.get("remote") is None:
        print("no remote")
        return 0
    print(f"remote:      {st['remote']}" + (f" at {st['endpoint_url']}" if st.get("endpoint_url") else ""))
    print(f"backlog:     {st['backlog_objects']} object(s), {st['backlog_bytes']} bytes of packs"
          + (", catalog changes" if st.get("catalog_changed") else ""))
    last = st.get("last_sync_ns")
    print(f"last sync:   {format_time(last) if last else 'never'}")
    print(f"error:       {describe_error(st)}")
    if st.get("cache"):
        print(f"cache:       {st['cache']}")
    print(f"writer:      {describe_lease(st.get('lease') or {})}")
    return 0


def _print_follower(f: dict[str, Any]) -> None:
    def when(seconds: float | None) -> str:
        return format_time(int(seconds * 1e9)) if seconds else "never"

    print(f"follows:     {f['url']} (read-only; refreshed every {f['interval']:g}s)")
    print(f"shows:       checkpoint {f.get('seq')} (epoch {f.get('epoch')})"
          + (f", written by {f['writer']}" if f.get("writer") else ""))
    print(f"last check:  {when(f.get('checked'))}")
    error = f.get("error")
    print(f"error:       {error} (failing since {when(f.get('failing_since'))})" if error else "error:       none")
    print("writer:      no (a follower; 'vfs lease take' on a clone makes a store the writer)")
