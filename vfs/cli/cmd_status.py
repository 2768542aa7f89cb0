"""vfs status [--json]: the remote sync state of a store (backlog, last sync, current failure).

Mounted, the daemon answers: the failure its requests meet now (what, since when, how many attempts
failed), or that it stopped syncing because another store wrote the remote; and whether the store is
the volume's writer (holds the writer lease), or says plainly that another store took it. Unmounted, what the last
sync of the store met, until one succeeds. A store without a remote is not an error: "no remote" (and
`"remote": null`), exit 0, mounted or not.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfs.cli.common import add_store_options, store_of
from vfs.compose import open_repository
from vfs.control.client import call, daemon_running
from vfs.fs.locate import format_time


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
