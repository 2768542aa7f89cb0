"""Killing a child process in the middle of its work, for crash tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def kill_after_ready(args: list[str], delay: float, *, cwd: Path | None = None) -> bool:
    """Run `args`, which prints "ready" when its work starts and "done" when it ends; SIGKILL it `delay`
    seconds after "ready". Returns whether the kill landed before "done"."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=cwd)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()
    finally:
        proc.kill()  # a no-op once it has died; ends it if the child never got ready
        proc.stdout.close()
        proc.wait()
    return b"done" not in rest
