"""Logging set-up for the CLI and the daemon (modules just use logging.getLogger(__name__))."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: int = logging.INFO, stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
