"""Progress of long work on stderr: a bar redrawn in place on a terminal, else a line every few seconds.

Where stderr is no terminal (a cron job, a notebook cell, a log file) a redrawn bar would pile up as
one endless line of carriage returns, so there the progress is a plain line every *interval* seconds
($VFS_PROGRESS_INTERVAL, default 5): bytes and objects done, the average rate, the time so far. Work
that ends within the first interval prints nothing (a cron job stays quiet); work that printed lines
prints a last one when it ends, unless the last already showed how it ended. `quiet` shows nothing.
Progress never goes to stdout, where a command prints its answer (JSON with --json).

Not tqdm: redirected to a file it still redraws with carriage returns (tqdm/tqdm#750, open), which is
the very mess the line mode avoids, and it would add a dependency for some thirty lines.
"""

from __future__ import annotations

import math
import os
import sys
import time

from vfs.errors import UsageError

INTERVAL_VARIABLE = "VFS_PROGRESS_INTERVAL"
LINE_INTERVAL = 5.0  # seconds between two lines where stderr is no terminal
BAR_INTERVAL = 0.1  # seconds between two redraws of the terminal bar
BAR_WIDTH = 30
MiB = 2**20


def line_interval() -> float:
    """$VFS_PROGRESS_INTERVAL seconds, else LINE_INTERVAL.

    Raises:
        UsageError: the variable is set to something other than a positive, finite number.
    """
    text = os.environ.get(INTERVAL_VARIABLE)
    if text is None:
        return LINE_INTERVAL
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"{INTERVAL_VARIABLE} must be a positive number of seconds, not {text!r}")
    return seconds


class Progress:
    """Call with (bytes done, bytes in all[, objects done, objects in all]) as work goes on; `close()`
    ends the display. What it was told last stays readable (`done`, `objects_done`) for the summary."""

    def __init__(self, label: str, *, quiet: bool = False) -> None:
        self.label = label
        self.on_terminal = sys.stderr.isatty()
        self.enabled = not quiet
        line_every = line_interval()  # read on a terminal too: a wrong setting fails wherever it is tried
        self.interval = BAR_INTERVAL if self.on_terminal else line_every
        self.done = self.total = 0
        self.objects_done: int | None = None
        self.objects_total: int | None = None
        self._start = time.monotonic()
        self._last = 0.0 if self.on_terminal else self._start  # lines: the first after one interval
        self._shown = False
        self._shown_state: tuple[int, int | None] | None = None  # (done, objects done) of the last line

    def __call__(self, done: int, total: int, objects_done: int | None = None,
                 objects_total: int | None = None) -> None:
        self.done, self.total = done, total
        self.objects_done, self.objects_total = objects_done, objects_total
        now = time.monotonic()
        if not self.enabled or (now - self._last < self.interval and not (self.on_terminal and done >= total)):
            return
        self._last = now
        if self.on_terminal:
            sys.stderr.write("\r" + self._bar())
        else:
            sys.stderr.write(self._line(now) + "\n")
            self._shown_state = (done, objects_done)
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        """End the bar's line; after periodic lines, print the last state (how it ended) unless the last
        line showed it."""
        if not self._shown:
            return
        if self.on_terminal:
            sys.stderr.write("\n")
        elif self._shown_state != (self.done, self.objects_done):
            sys.stderr.write(self._line(time.monotonic()) + "\n")
        sys.stderr.flush()
        self._shown = False

    def _bar(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * BAR_WIDTH)
        return (f"{self.label}: [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%}"
                f" {self.done / MiB:,.1f}/{self.total / MiB:,.1f} MiB")

    def _line(self, now: float) -> str:
        """`clone: 12.0/40.0 MiB (30%), 3/10 objects, 2.4 MiB/s, 5.0s`: one log line of the state now."""
        share = self.done / self.total if self.total else 1.0
        elapsed = max(now - self._start, 1e-9)
        parts = [f"{self.label}: {self.done / MiB:,.1f}/{self.total / MiB:,.1f} MiB ({share:.0%})"]
        if self.objects_done is not None and self.objects_total is not None:
            parts.append(f"{self.objects_done}/{self.objects_total} objects")
        parts.append(f"{self.done / MiB / elapsed:,.1f} MiB/s")
        parts.append(f"{elapsed:.1f}s")
        return ", ".join(parts)
