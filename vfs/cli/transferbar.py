"""A one-line progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys


class Bar:
    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.tty:
            return
        frac = done / total if total else 1.0
        width = 30
        filled = int(frac * width)
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {frac:4.0%}"
                         f" {done / 2**20:,.1f}/{total / 2**20:,.1f} MiB")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
