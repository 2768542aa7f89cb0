"""History specs: what follows the `@` in `PATH@SPEC`, and the names snapshots may have.

A spec is one of:
    (empty)             PATH@ is a directory of the file's versions, named 1, 2, ...
    N                   version N (1 is the first; no leading zeros)
    NAME                the state in snapshot NAME (names are looked up before times)
    TIME                the state at an instant: 2026-11-21T10:15:00 (local time unless it carries Z or
                        an offset), 2026-11-21 (that day's start, local), -90s / -10m / -1h / -2d / -1w / -1d12h
                        (that long ago), today / yesterday (the day's start, local), now
Snapshot names are refused when they could be read as anything else (a number, a time) or contain
'/' or '@', so a spec has one meaning; they are UTF-8 text without control characters.

Only ASCII digits count (`f@²`, or an Arabic-Indic digit one, names nothing), and a spec out of range
names nothing: no version number beyond SQLite's 64-bit integers, no time outside [1970, 2262] (the
nanoseconds since the epoch that a 64-bit commit time can hold). Such a spec, like any unparsable
one, is ENOENT.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vfs.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
# re.ASCII: \d would match every Unicode digit (Arabic-Indic ones), which int() reads as numbers.
_DURATION = re.compile(r"(\d+)([smhdwy])", re.ASCII)
_RELATIVE = re.compile(r"^-(\d+[smhdwy])+$", re.ASCII)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME_LIKE = re.compile(r"^\d{4}-\d", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NS = 1_000_000_000
# Versions and commit times are SQLite INTEGERs (signed 64 bits): nothing larger can name one.
_INT64_MAX = 2**63 - 1


def format_time(time_ns: int) -> str:
    """An instant (nanoseconds since the epoch) for people: local time, to the second."""
    return datetime.fromtimestamp(time_ns / _NS).strftime("%Y-%m-%d %H:%M:%S")


def parse_duration(text: str) -> int:
    """Nanoseconds in a duration such as `90s`, `6h`, `2d`, `1w`, `1y` or `1d12h` (also for prune).

    Raises:
        UsageError: `text` is not such a duration.
    """
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"duration {text!r} is not like 90s, 10m, 6h, 2d, 1w, 1y or 1d12h")
    ns = sum(int(n) * _UNITS[u] for n, u in parts) * _NS
    if ns > _INT64_MAX:  # it is compared with commit times, SQLite INTEGERs
        raise UsageError(f"duration {text!r} is longer than any store can be old (292 years)")
    return ns


@dataclass(frozen=True)
class Spec:
    """A parsed spec: exactly one of `version`, `time_ns`, `snapshot` is set, or `listing`."""

    listing: bool = False
    version: int | None = None
    time_ns: int | None = None
    snapshot: str | None = None


def parse_time(text: str, now_ns: int | None = None) -> int | None:
    """The instant `text` names, in ns since the epoch; None if it is not a time spec, or one out of
    range (before 1970 or after 2262: no commit can have such a time)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    t = _instant(text, now_ns)
    return t if t is not None and 0 <= t <= _INT64_MAX else None


def _instant(text: str, now_ns: int) -> int | None:
    if _RELATIVE.match(text):
        try:
            return now_ns - parse_duration(text[1:])
        except UsageError:  # longer ago than 292 years: before 1970, out of range
            return None
    if text == "now":
        return now_ns
    try:  # datetime raises for instants it cannot convert (0001-01-01 local time east of UTC is year 0)
        if text in ("today", "yesterday"):
            day = datetime.fromtimestamp(now_ns / _NS).replace(hour=0, minute=0, second=0, microsecond=0)
            if text == "yesterday":
                day -= timedelta(days=1)
            return int(day.timestamp()) * _NS
        if not _DATE.match(text):
            return None
        when = datetime.fromisoformat(text)
        # Naive times are local; timestamp() handles both naive (local) and aware datetimes.
        return int(when.timestamp() * 1_000_000) * 1000
    except (ValueError, OverflowError, OSError):
        return None


def parse_version(text: str) -> int | None:
    """The version number `text` is (ASCII digits, no leading zero, within 64 bits), else None."""
    if not (text.isascii() and text.isdigit()) or text.startswith("0"):
        return None
    n = int(text)
    return n if n <= _INT64_MAX else None


def parse_spec(text: str, now_ns: int | None = None) -> Spec | None:
    """Parse what follows '@'; None when it cannot be a spec (the caller answers ENOENT)."""
    if text == "":
        return Spec(listing=True)
    if text.isascii() and text.isdigit():
        n = parse_version(text)
        return None if n is None else Spec(version=n)
    t = parse_time(text, now_ns)
    if t is not None:
        return Spec(time_ns=t)
    if looks_like_time(text) or "/" in text:
        return None  # a malformed time (2026-13-45) is not a snapshot name either
    return Spec(snapshot=text)


def looks_like_time(text: str) -> bool:
    return bool(_TIME_LIKE.match(text) or _RELATIVE.match(text) or text in ("now", "today", "yesterday"))


def check_snapshot_name(name: str) -> None:
    """Raise UsageError unless `name` can name a snapshot without being read as something else."""
    if not name or name in (".", ".."):
        raise UsageError(f"snapshot name {name!r} is empty or reserved")
    if "/" in name or "@" in name or "\0" in name:
        raise UsageError(f"snapshot name {name!r} must not contain '/', '@' or NUL")
    if _CONTROL.search(name):  # a newline would make `vfs snapshot list` ambiguous; a tab, its columns
        raise UsageError(f"snapshot name {name!r} must not contain control characters")
    try:
        size = len(name.encode())
    except UnicodeEncodeError:  # raw bytes of a path (surrogate escapes): names are TEXT, shown in JSON
        raise UsageError(f"snapshot name {name!r} is not valid UTF-8") from None
    if size > 255:
        raise UsageError("snapshot name is longer than 255 bytes")
    if name.isdigit():
        raise UsageError(f"snapshot name {name!r} would read as a version number")
    if looks_like_time(name) and parse_time(name) is not None:
        raise UsageError(f"snapshot name {name!r} would read as a time")
    if looks_like_time(name):
        raise UsageError(f"snapshot name {name!r} looks like a (malformed) time")


def default_snapshot_names(now_ns: int | None = None) -> Iterator[str]:
    """Default names for a snapshot taken at `now_ns`, best first; the first one free is taken.

    The ISO time to the second in UTC ('2026-11-22T10:15:00Z'); when a snapshot of that second exists
    (two backup runs within a second), the time to the microsecond ('2026-11-22T10:15:00.250117Z'), then
    the microseconds after it: a snapshot always gets a default name. Each parses as the time it was
    taken (to a few microseconds), so user-chosen names can never be one (`check_snapshot_name` refuses
    times), and snapshot names are looked up before times: `PATH@<default name>` is exactly that snapshot.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    second = datetime.fromtimestamp(now_ns // _NS, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    yield second + "Z"
    micros = now_ns // 1000 % 1_000_000
    for us in itertools.count(micros):
        # Past the second's last microsecond, on into the next seconds (never reached in practice).
        at = datetime.fromtimestamp(now_ns // _NS + us // 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        yield f"{at}.{us % 1_000_000:06d}Z"
