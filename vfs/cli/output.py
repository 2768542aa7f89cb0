"""What a command prints as its answer on stdout: JSON with --json, else text for a person.

Progress and warnings go to stderr, so that stdout holds nothing but the answer (`vfs clone ... --json
| jq` works while a clone shows its progress).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def emit(args: argparse.Namespace, answer: dict[str, Any], text: Callable[[dict[str, Any]], str]) -> None:
    """Print `answer` as JSON when the command was given --json, else `text(answer)` (nothing if empty)."""
    if getattr(args, "json", False):
        print(json.dumps(answer, indent=2))
        return
    shown = text(answer)
    if shown:
        print(shown)
