"""vfs status [--json]: the remote sync state of a store (backlog, last sync, current error)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfs.cli.common import add_store_options, store_of
from vfs.control.client import call, daemon_running
from vfs.fs.locate import format_time
from vfs.repository import Repository


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
    from vfs.sync.checkpoint import Manifest
    from vfs.sync.uploader import status_of

    with Repository.open(store, lock=False) as repo:
        return {"mounted": False, **status_of(repo, Manifest.load(repo.path))}


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
    print(f"error:       {st.get('error') or 'none'}")
    if st.get("cache"):
        print(f"cache:       {st['cache']}")
    return 0
