"""Times as people type them in options and arguments: `--since`, `--until`, and diff's A and B.

An *option time* is first read with the spec grammar of `vfs.fs.history` (2026-11-21T10:15, -2h, today,
yesterday, now), and failing that as a natural *phrase* by dateparser ("midnight yesterday", "last friday
17:00", "3 days ago"), in English, local time, preferring the past. A path's `@SPEC` keeps to the grammar
alone (`vfs.fs.locate`): a name in the mount must mean one thing whatever dateparser would make of it.

The commit *before the store* (0) names the empty tree: `vfs diff yesterday` on a store made today
compares against nothing rather than failing.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import TYPE_CHECKING

from vfs.errors import UsageError
from vfs.fs.history import looks_like_time, parse_time, parse_version
from vfs.types import CommitNo

if TYPE_CHECKING:
    from vfs.catalog import Catalog

BEFORE_THE_STORE = CommitNo(0)  # no commit is numbered 0: the tree at it is empty (catalog.tree(0) == [])
EXAMPLES = "e.g. 2026-11-21T10:15, -2h, yesterday, 'midnight yesterday', 'last friday 17:00'"
_NS = 1_000_000_000
_INT64_MAX = 2**63 - 1
# dateparser reads a lone letter or digit ('a', '²') as a day of the month, which nobody means by it:
# a phrase must have a word of three letters or more (ago, noon, friday, yesterday, ...).
_PHRASE = re.compile(r"[A-Za-z]{3}")
_SETTINGS = {"PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}


def parse_phrase(text: str, now_ns: int | None = None) -> int | None:
    """The instant a natural phrase names, in ns since the epoch; None if it names none (or one before
    1970 or after 2262, which no commit can have)."""
    if not text.isascii() or not _PHRASE.search(text):
        return None
    import dateparser  # only here: importing it takes half a second

    now_ns = time.time_ns() if now_ns is None else now_ns
    settings = {**_SETTINGS, "RELATIVE_BASE": datetime.fromtimestamp(now_ns / _NS)}
    try:
        when = dateparser.parse(text, languages=["en"], settings=settings)
        # A naive datetime is local time, which is what dateparser returns without a zone in the text.
        t = None if when is None else int(when.timestamp() * 1_000_000) * 1000
    except (ValueError, OverflowError, OSError):
        return None
    return t if t is not None and 0 <= t <= _INT64_MAX else None


def parse_when(text: str, now_ns: int | None = None) -> int | None:
    """The instant `text` names by the spec grammar or as a phrase (None: neither)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    t = parse_time(text, now_ns)
    return t if t is not None else parse_phrase(text, now_ns)


def time_option(text: str, what: str) -> int:
    """The instant an option's value names (`what` is the option, for the message).

    Raises:
        UsageError: it names none.
    """
    t = parse_when(text)
    if t is None:
        raise UsageError(f"{what}: {text!r} is not a valid time ({EXAMPLES})")
    return t


def commit_named(catalog: Catalog, text: str) -> CommitNo:
    """The commit a snapshot name or a time (grammar or phrase) names; BEFORE_THE_STORE for a time
    before the store's first commit. Snapshot names come first, as everywhere.

    Raises:
        UsageError: `text` is a version number, or names no snapshot and no time.
    """
    snap = catalog.snapshot(text)
    if snap is not None:
        return snap.commit_no
    if parse_version(text) is not None:
        raise UsageError(f"{text!r} is a version number; expected a snapshot name or a time")
    when = parse_when(text)
    if when is None:
        if text.isdigit() or "/" in text or looks_like_time(text):
            raise UsageError(f"{text!r} is not a snapshot name or a valid time ({EXAMPLES})")
        raise UsageError(f"no snapshot named {text!r} (and it is not a time: {EXAMPLES})")
    found = catalog.commit_at_time(when)
    return BEFORE_THE_STORE if found is None else found
