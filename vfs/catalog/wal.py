"""The catalog's WAL checkpoints, run as a background task instead of inside commits."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from vfs.catalog import Catalog

log = logging.getLogger(__name__)


async def checkpoint_wal(catalog: Catalog) -> None:
    """Background task: copy the catalog's WAL into its database every second. Cancel to stop."""
    # Commits on the loop must not stall on the WAL checkpoint's fsyncs: do them here instead.
    catalog.defer_checkpoints()
    limiter = trio.CapacityLimiter(1)
    while True:
        await trio.sleep(1.0)
        try:
            await trio.to_thread.run_sync(catalog.checkpoint, limiter=limiter)
        except Exception as e:  # a full disk: the WAL keeps the data; try again later
            log.warning("catalog checkpoint failed (will retry): %s", e)
            await trio.sleep(10.0)
