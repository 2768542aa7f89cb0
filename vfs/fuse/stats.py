"""Request statistics: how many FUSE requests of each kind the daemon answered, and the time spent in each.

Off unless the environment names a file in `VFS_FUSE_STATS` (benchmarks set it: scripts/bench --requests).
Then every request handler of the Operations object is wrapped to count its calls and add up the time
between its start and its answer (on the trio loop: time spent waiting for other requests is included
when a handler awaits). The totals are written to that file as JSON when the mount ends: {handler:
{"calls": n, "seconds": s}}. A request the kernel answers itself (from its caches) never arrives here,
which is the point: the counts show what an operation costs in round trips to the daemon.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_VARIABLE = "VFS_FUSE_STATS"

# Every request pyfuse3 passes to Operations (forget included: it is a message from the kernel too).
HANDLERS = (
    "lookup", "forget", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir", "symlink",
    "rename", "link", "open", "create", "read", "write", "flush", "release", "fsync", "opendir", "readdir",
    "releasedir", "fsyncdir", "statfs", "setxattr", "getxattr", "listxattr", "removexattr", "access",
)


class RequestStats:
    """Counters and times per handler, written to `path` by `dump`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls: dict[str, int] = {}
        self.seconds: dict[str, float] = {}

    @classmethod
    def from_environment(cls) -> RequestStats | None:
        value = os.environ.get(ENV_VARIABLE)
        return cls(Path(value)) if value else None

    def wrap(self, ops: object) -> None:
        """Replace each handler `ops` defines by one that counts and times it (instance attributes)."""
        for name in HANDLERS:
            handler = getattr(ops, name, None)
            if handler is not None:
                setattr(ops, name, self._counted(name, handler))

    def _counted(
        self, name: str, handler: Callable[..., Coroutine[Any, Any, Any]]
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        self.calls[name] = 0
        self.seconds[name] = 0.0

        @functools.wraps(handler)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await handler(*args, **kwargs)
            finally:
                self.calls[name] += 1
                self.seconds[name] += time.perf_counter() - start

        return counted

    def dump(self) -> None:
        """Write the totals (the handlers called at least once) to the file; a failure is only logged."""
        totals = {name: {"calls": n, "seconds": round(self.seconds[name], 6)}
                  for name, n in sorted(self.calls.items()) if n}
        try:
            self.path.write_text(json.dumps(totals, indent=1) + "\n")
        except OSError as e:
            log.warning("could not write request statistics to %s: %s", self.path, e)
