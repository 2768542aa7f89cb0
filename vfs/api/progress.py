"""Progress of long API work with tqdm: a bar in a terminal and in a notebook (tqdm.auto picks the widget).

`progress=False` shows nothing; `progress=None` (the default) shows a bar only where someone watches:
a terminal or a notebook, not a batch job whose stderr is a file.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Advance = Callable[[int, int], None]  # (bytes, files) just done


def _watched() -> bool:
    if sys.stderr is not None and sys.stderr.isatty():
        return True
    return "ipykernel" in sys.modules  # a notebook: tqdm.auto draws a widget there


@contextmanager
def bar(label: str, total_bytes: int, total_files: int, enabled: bool | None) -> Iterator[Advance]:
    """A byte-counting bar that also shows files done; yields `advance(bytes, files)` (thread-safe)."""
    show = _watched() if enabled is None else enabled
    if not show:
        yield lambda nbytes, files: None
        return
    from tqdm.auto import tqdm  # only when shown: importing it costs

    files = [0]
    lock = threading.Lock()  # `get` advances from several threads
    t: Any = tqdm(total=total_bytes, desc=label, unit="B", unit_scale=True, unit_divisor=1024, leave=True,
                  dynamic_ncols=True)

    def advance(nbytes: int, nfiles: int) -> None:
        with lock:
            files[0] += nfiles
            t.update(nbytes)
            if nfiles:
                t.set_postfix_str(f"{files[0]}/{total_files} files", refresh=False)

    try:
        yield advance
    finally:
        t.close()
