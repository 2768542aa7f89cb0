"""vfs pull [STORE]: bring a clone that has written nothing up to its remote volume's newest state.

Only the checkpoint objects after the one the store holds are downloaded (or a whole chain, when the
writer has started a new one since). A clone that held all its data (an eager clone) also downloads
the packs the new state added, unless --lazy; a lazy clone fetches them on first read. A store with
changes its remote lacks is refused (exit 3): pulling would discard them. A mounted store is refused
too: a follower mount refreshes itself (`vfs refresh`).
"""

from __future__ import annotations

import argparse
from typing import Any

from vfs.cli.common import add_store_options, passphrase_of, store_of
from vfs.cli.output import emit
from vfs.cli.progress import Progress
from vfs.control.client import daemon_running
from vfs.errors import StoreLocked


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("pull", help="bring a clone up to its remote's newest state")
    add_store_options(p, mount=False, positional=True)
    p.add_argument("--lazy", action="store_true", help="download no packs now, even for an eager clone")
    p.add_argument("--json", action="store_true", help="print what was pulled as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="show no progress")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfs.compose import open_repository
    from vfs.sync.clone import download_all
    from vfs.sync.pull import pull_store
    from vfs.sync.remote import open_store_backend, require_remote

    store = store_of(args)
    if daemon_running(store):
        raise StoreLocked(f"store {store} is mounted: a follower mount refreshes itself ('vfs refresh MOUNTPOINT'),"
                          " and a writer's mount is the newest state already")
    with open_repository(store, passphrase=passphrase_of(args)) as repo:
        require_remote(repo)
        complete = not args.lazy and all(repo.chunks.pack_file(p).exists() for p in repo.catalog.remote_packs())
        with open_store_backend(repo) as backend:
            prepared = pull_store(repo, backend)
            fetched = 0
            if prepared is not None and complete:
                bar = Progress("pull", quiet=args.quiet)
                try:
                    fetched = download_all(repo, backend, repo.catalog.remote_packs(), progress=bar)
                finally:
                    bar.close()
        answer: dict[str, Any] = {"store": str(store), "changed": prepared is not None,
                                  "checkpoint_bytes": prepared.fetched if prepared else 0, "pack_bytes": fetched}
        if prepared is not None:
            answer.update(seq=prepared.manifest.seq, epoch=prepared.manifest.epoch)
    emit(args, answer, lambda a: (f"pulled checkpoint {a['seq']} into {a['store']}" if a["changed"]
                                  else f"{a['store']} is up to date"))
    return 0
