"""Retention policies in restic's terms: which snapshots to keep, given their times.

Walking snapshots newest first, `--keep-last N` keeps the N newest; `--keep-hourly N` keeps the newest
snapshot of each of the N most recent hours that have one (likewise daily, weekly (ISO weeks), monthly,
yearly, in the given time zone); `--keep-within D` keeps every snapshot taken within D of the newest
one (restic's rule: a volume left alone for a month does not lose its last snapshots). A snapshot is
kept if any rule keeps it; its reasons say which. A policy with no snapshot rule keeps every snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from vfs.catalog import Snapshot
from vfs.errors import UsageError


@dataclass(frozen=True)
class Policy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within_ns: int | None = None  # keep snapshots this close to the newest one
    versions_within_ns: int | None = None  # prune versions no kept snapshot holds once older than this

    @property
    def has_snapshot_rule(self) -> bool:
        return any((self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)) or (
            self.within_ns is not None
        )

    def as_json(self) -> dict[str, Any]:
        return {"last": self.last, "hourly": self.hourly, "daily": self.daily, "weekly": self.weekly,
                "monthly": self.monthly, "yearly": self.yearly, "within_ns": self.within_ns,
                "versions_within_ns": self.versions_within_ns}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Policy:
        def count(key: str) -> int:
            value = data.get(key, 0)
            if not isinstance(value, int) or value < 0:
                raise UsageError(f"policy {key} must be a non-negative integer")
            return value

        def ns(key: str) -> int | None:
            value = data.get(key)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise UsageError(f"policy {key} must be a non-negative integer or null")
            return value

        return cls(count("last"), count("hourly"), count("daily"), count("weekly"), count("monthly"),
                   count("yearly"), ns("within_ns"), ns("versions_within_ns"))


_BUCKETS: list[tuple[str, Callable[[datetime], object]]] = [
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: (t.year, t.month, t.day)),
    ("weekly", lambda t: t.isocalendar()[:2]),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: t.year),
]


@dataclass
class Decision:
    snapshot: Snapshot
    reasons: list[str] = field(default_factory=list)  # empty: the snapshot goes

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def select(snapshots: Sequence[Snapshot], policy: Policy, tz: tzinfo | None = None) -> list[Decision]:
    """A decision for every snapshot, newest first. `tz`: the zone of hour and day boundaries (local)."""
    ordered = sorted(snapshots, key=lambda s: (s.time_ns, s.commit_no), reverse=True)
    decisions = [Decision(s) for s in ordered]
    if not policy.has_snapshot_rule:
        for d in decisions:
            d.reasons.append("no snapshot policy")
        return decisions
    for d in decisions[: policy.last]:
        d.reasons.append("last")
    if policy.within_ns is not None and ordered:
        newest = ordered[0].time_ns
        for d in decisions:
            if d.snapshot.time_ns >= newest - policy.within_ns:
                d.reasons.append("within")
    for name, key in _BUCKETS:
        left: int = getattr(policy, name)
        seen: object = None
        for d in decisions:
            if left <= 0:
                break
            bucket = key(datetime.fromtimestamp(d.snapshot.time_ns / 1e9, tz).astimezone(tz))
            if bucket != seen:
                seen = bucket
                d.reasons.append(name)
                left -= 1
    return decisions
