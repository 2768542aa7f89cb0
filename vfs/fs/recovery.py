"""Recovery at start: staging files a killed daemon left behind become versions (see `vfs.fs.staging`)."""

from __future__ import annotations

import logging
import os

import trio

from vfs.errors import NoSpace, NotFound
from vfs.fs.committer import Committer
from vfs.fs.handles import OpenFiles, Staging
from vfs.fs.staging import mark_dirty, os_call
from vfs.repository import Repository
from vfs.types import InodeNo

log = logging.getLogger(__name__)


async def recover(repo: Repository, files: OpenFiles, committer: Committer, threads: trio.CapacityLimiter) -> int:
    """Commit staging files left by a killed daemon; returns how many became versions.

    One that cannot be committed for lack of space is kept as the file's uncommitted content, as
    if it had just been closed: reads are served from it and the committer retries. Refusing to
    mount instead would leave the user no way to free space through the mount.
    """
    catalog = repo.catalog

    def work() -> tuple[int, list[InodeNo]]:
        committed = 0
        no_room: list[InodeNo] = []
        for path in sorted(repo.staging.iterdir()):
            if path.is_dir():
                continue  # spares
            try:
                ino = InodeNo(int(path.name))
                attr = catalog.attr(ino)
            except (ValueError, NotFound):
                path.unlink()
                continue
            if attr.nlink > 0:
                current = catalog.version_at(ino)
                try:
                    ingested = repo.ingest(path)
                    unchanged = ingested.size == 0 if current is None else current.hash == ingested.content_hash
                    if not unchanged:
                        mtime = path.stat().st_mtime_ns
                        catalog.commit_versions([(ino, ingested, mtime, None)], origin="recovery")
                        committed += 1
                        log.info("recovered uncommitted content of inode %d (%d bytes)", ino, ingested.size)
                except NoSpace:
                    no_room.append(ino)
                    continue
            path.unlink()
        return committed, no_room

    committed, no_room = await trio.to_thread.run_sync(work, limiter=threads)
    for ino in no_room:
        _adopt_staging(repo, files, committer, ino)
    if no_room:
        log.warning("no space to commit %d file(s) left uncommitted by an earlier daemon: they stay in %s, "
                    "are read from there, and are committed once there is room", len(no_room), repo.staging)
    return committed


def _adopt_staging(repo: Repository, files: OpenFiles, committer: Committer, ino: InodeNo) -> None:
    """Take a staging file left behind as `ino`'s dirty content, queued for the committer."""
    path = repo.staging / str(ino)
    fd = os_call(os.open, path, os.O_RDWR | os.O_CLOEXEC)
    st = os.fstat(fd)
    live = files.get_live(ino)
    live.staging = Staging(fd, path, st.st_size, st.st_mtime_ns)
    mark_dirty(live, st.st_mtime_ns)
    committer.queue(ino)
