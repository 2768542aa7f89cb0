"""A one-line progress bar on stderr for long checks, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    """Call with (done, total) bytes as work goes on; `close()` ends the line."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        share = done / total if total else 1.0
        filled = int(share * 30)
        sys.stderr.write(f"\r{self.label}: [{'#' * filled}{'.' * (30 - filled)}] {share:4.0%}"
                         f" {done / 2**20:,.1f}/{total / 2**20:,.1f} MiB")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._shown = False
