"""Pruning: forget the snapshots a policy does not keep, and the versions nothing kept holds.

A version is kept when any of these holds: files with a live name hold it now (the latest version of
every existing file is never pruned); a kept snapshot's tree holds it; it was committed within
`--keep-versions-within` of now; the caller names it (the daemon: files it has open). Without
`--keep-versions-within` no version is pruned at all, only snapshot names: pruning history is opt-in.
Pruning changes only the catalog; `vfs gc` then frees the chunks and packs no version uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from vfs.catalog import Catalog, VersionInfo
from vfs.fs.history import format_time
from vfs.maintenance.retention import Decision, Policy, select


@dataclass
class Plan:
    decisions: list[Decision]  # every snapshot, newest first
    versions: list[VersionInfo] = field(default_factory=list)  # versions to delete
    versions_kept: int = 0

    @property
    def forget(self) -> list[str]:
        return [d.snapshot.name for d in self.decisions if not d.keep]

    @property
    def version_bytes(self) -> int:
        return sum(v.size for v in self.versions)

    def as_json(self) -> dict[str, Any]:
        return {
            "snapshots": [{"name": d.snapshot.name, "time": format_time(d.snapshot.time_ns), "keep": d.keep,
                           "reasons": d.reasons} for d in self.decisions],
            "forget": self.forget,
            "versions": len(self.versions),
            "version_bytes": self.version_bytes,
            "versions_kept": self.versions_kept,
            "pruned_versions": [{"ino": v.ino, "version": v.vno, "time": format_time(v.time_ns), "size": v.size}
                                for v in self.versions],
        }


def plan(catalog: Catalog, policy: Policy, *, now_ns: int | None = None, tz: tzinfo | None = None,
         keep_versions: Iterable[int] = ()) -> Plan:
    """What pruning with `policy` would delete now (nothing is changed)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    decisions = select(catalog.snapshots(), policy, tz)
    result = Plan(decisions)
    infos = catalog.version_infos()
    if policy.versions_within_ns is None:
        result.versions_kept = len(infos)
        return result
    held = catalog.current_version_ids() | set(keep_versions)
    for d in decisions:
        if d.keep:
            held |= catalog.version_ids_at(d.snapshot.commit_no)
    cutoff = now_ns - policy.versions_within_ns
    for v in infos:
        if v.id in held or v.time_ns >= cutoff:
            result.versions_kept += 1
        else:
            result.versions.append(v)
    return result


def apply(catalog: Catalog, p: Plan, *, step: Callable[[str], None] = lambda what: None) -> tuple[int, int]:
    """Carry out plan `p` in one catalog transaction; (versions deleted, their bytes).

    The catalog checks again, inside that transaction, that no deleted version is held by a file's
    name or a remaining snapshot (something may have changed since the plan was made). `step("commit")`
    is called inside it, just before it commits (a test kills the process there).
    """
    return catalog.prune([v.id for v in p.versions], p.forget, step=step)
