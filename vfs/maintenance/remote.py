"""The remote half of maintenance: `fsck --remote` (check and repair the bucket) and remote gc.

Checking (`check_remote`) adds to a local fsck report what the bucket lacks or holds damaged: the
`config` object; the checkpoint chain (`catalog/latest`, then its base and deltas exist; with
`read_data` the chain is applied and the database checked against the pointer's BLAKE3); every pack
object the catalog needs (HEAD: present, right size; with `read_data`, or a deterministic subset of
packs chosen by key, GET and re-hashed against its name). With `read_data` the packs the remote's own
checkpoint names are checked too (what a clone needs).

Repairing (`repair_remote`): a damaged or missing local chunk is mended by fetching its pack from the
remote (verified against its name, then put in place atomically); a missing or damaged pack object is
put again from the local pack file when that is intact (a file that no longer hashes to its key but
whose every entry verifies is uploaded under its new name and its row rewritten); a broken checkpoint
chain is replaced by a new base checkpoint.

Remote gc (`forget_dead` then, after a checkpoint, `sweep`) deletes in the reverse of the remote write
order: first the local rows of packs no chunk row names (packs gc deleted or repacked; remote-only
packs whose chunks all went), then a checkpoint that no longer names them is uploaded with its
pointer, and only then are objects deleted: each object under `packs/` that neither the local catalog
nor the checkpoint `catalog/latest` points to now (read back from the bucket, not assumed) names, and
each object under `catalog/` that is not in the current chain. A crash anywhere leaves either objects
still named (kept) or objects named by nothing (deleted by the next gc). A lazy clone of an older
checkpoint may then find packs gone: one writer per prefix, and clones are of the newest state.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfs.backend import Backend, RetryPolicy
from vfs.catalog import copies
from vfs.catalog.catalog import CATALOG_FILE
from vfs.errors import BackendError, BackendNotFound, BackendUnavailable, VfsError
from vfs.maintenance.fsck import Problem, Report
from vfs.repository import Repository
from vfs.store import codec
from vfs.sync import checkpoint, layout
from vfs.sync.remote import open_store_backend, require_remote, sealed_for
from vfs.sync.transfer import download_pack
from vfs.types import PackNo

log = logging.getLogger(__name__)

REMOTE_KINDS = ("remote-config", "remote-catalog", "remote-missing", "remote-size", "remote-corrupt")


def open_remote(repo: Repository, *, retry: RetryPolicy | None = None) -> Backend:
    """The store's remote, checked to answer (a clear error, not a traceback, when it does not).

    Raises:
        UsageError: the store has no remote.
        BackendError: the endpoint cannot be reached or refuses access.
    """
    config = require_remote(repo)
    # Fewer, shorter tries than the uploader's: a check run by hand should fail within seconds.
    backend = open_store_backend(repo, retry=retry or RetryPolicy(max_attempts=4, max_time=15.0),
                                 connect_timeout=5.0)
    try:
        backend.head(layout.CONFIG_KEY)
    except BackendError as e:
        backend.close()
        where = config.url + (f" at {config.endpoint_url}" if config.endpoint_url else "")
        raise type(e)(f"cannot reach the remote {where}: {e}") from None
    return backend


def remote_only(repo: Repository) -> Callable[[int], bool]:
    """fsck's hook: a pack absent locally is expected when the remote holds it (evicted, lazy clone)."""
    rows = repo.catalog.remote_packs()
    return lambda pack: PackNo(pack) in rows


def in_subset(key: str, subset: tuple[int, int] | None) -> bool:
    if subset is None:
        return True
    n, m = subset
    digest = key.rsplit("/", 1)[-1]
    return int(digest[:16], 16) % m == n - 1


@dataclass
class RemoteCheck:
    """What `check_remote` looked at (merged into the report's JSON as "remote")."""

    packs: int = 0  # pack objects checked (HEAD)
    packs_read: int = 0  # pack objects read back and re-hashed
    bytes_read: int = 0
    checkpoint: int | None = None  # the seq catalog/latest names

    def as_json(self) -> dict[str, Any]:
        return {"packs": self.packs, "packs_read": self.packs_read, "bytes_read": self.bytes_read,
                "checkpoint": self.checkpoint}


def _remote_problem(kind: str, message: str, key: str, pack: int | None, used: bool = True) -> Problem:
    return Problem(kind, message, None, used, pack=pack, key=key)


def check_remote(
    repo: Repository, backend: Backend, report: Report, *, read_data: bool = False,
    subset: tuple[int, int] | None = None, progress: Callable[[int, int], None] = lambda done, total: None,
    jobs: int = 4,
) -> RemoteCheck:
    """Check the bucket; problems are appended to `report` (see the module docstring)."""
    backend = sealed_for(repo, backend)
    result = RemoteCheck()
    catalog = repo.catalog
    try:
        config = layout.unwrap_json(backend.get(layout.CONFIG_KEY), layout.CONFIG_KEY)
        if config.get("volume") != repo.store_id:
            report.problems.append(_remote_problem(
                "remote-config", f"{backend.url}: config names volume {config.get('volume')}, not this store's",
                layout.CONFIG_KEY, None))
    except BackendNotFound:
        if checkpoint.Manifest.load(repo.path) is not None:
            report.problems.append(_remote_problem("remote-config", f"{backend.url}: the config object is missing",
                                                   layout.CONFIG_KEY, None))
    except VfsError as e:
        if isinstance(e, BackendUnavailable):
            raise
        report.problems.append(_remote_problem("remote-config", str(e), layout.CONFIG_KEY, None))

    # what packs are needed: the local catalog's, and (read back) the remote checkpoint's
    rows = catalog.remote_packs()
    in_use = catalog.packs_in_use()
    used_packs = report.used_packs
    needed: dict[str, tuple[int, int | None, bool]] = {}  # key -> (size, local pack, used)
    for pack, (key, size) in rows.items():
        if pack in in_use:
            needed[key] = (size, pack, used_packs.get(pack, True))
    for key, size in _check_chain(repo, backend, report, result, read_data).items():
        if key not in needed:
            needed[key] = (size, None, True)

    result.packs = len(needed)
    to_read = [k for k in sorted(needed) if read_data and in_subset(k, subset)]
    total = sum(needed[k][0] for k in to_read)
    done = 0

    def head(key: str) -> tuple[str, int | None]:
        return key, backend.head(key)

    def get(key: str) -> tuple[str, bytes | None]:
        try:
            return key, backend.get(key)
        except BackendNotFound:
            return key, None

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fsck-remote") as pool:
        present: dict[str, int | None] = dict(pool.map(head, sorted(needed)))
        for key in sorted(needed):
            size, pack_no, used = needed[key]
            found = present[key]
            if found is None:
                report.problems.append(_remote_problem(
                    "remote-missing", f"{_named(pack_no)}object {key} is missing from {backend.url}", key, pack_no,
                    used))
            elif found != size:
                report.problems.append(_remote_problem(
                    "remote-size", f"{_named(pack_no)}object {key} has {found} bytes, not {size}", key, pack_no,
                    used))
        progress(0, total)
        readable = [k for k in to_read if present[k] == needed[k][0]]
        for key, data in pool.map(get, readable):
            size, pack_no, used = needed[key]
            done += size
            progress(done, total)
            if data is None:
                report.problems.append(_remote_problem(
                    "remote-missing", f"{_named(pack_no)}object {key} is missing from {backend.url}", key, pack_no,
                    used))
                continue
            result.packs_read += 1
            result.bytes_read += len(data)
            if len(data) != size or layout.pack_key(codec.chunk_id(data)) != key:
                report.problems.append(_remote_problem(
                    "remote-corrupt", f"{_named(pack_no)}object {key} is corrupt: its bytes do not hash to its name",
                    key, pack_no, used))
    progress(total, total)
    return result


def _named(pack: int | None) -> str:
    return f"pack {pack}: " if pack is not None else ""


def _check_chain(repo: Repository, backend: Backend, report: Report, result: RemoteCheck,
                 read_data: bool) -> dict[str, int]:
    """Check catalog/latest and its chain; with `read_data` rebuild it and return the packs it names."""
    try:
        pointer = layout.unwrap_json(backend.get(layout.LATEST_KEY), layout.LATEST_KEY)
    except BackendNotFound:
        if checkpoint.Manifest.load(repo.path) is not None or repo.catalog.remote_packs():
            report.problems.append(_remote_problem(
                "remote-catalog", f"{backend.url} holds no {layout.LATEST_KEY}: no checkpoint to clone from",
                layout.LATEST_KEY, None))
        return {}
    except BackendUnavailable:
        raise
    except VfsError as e:
        report.problems.append(_remote_problem("remote-catalog", str(e), layout.LATEST_KEY, None))
        return {}
    result.checkpoint = int(pointer.get("seq", 0))
    seen = checkpoint.Manifest.load(repo.path)
    # An older pointer is no rollback when it is the head the manifest replaces (a publish killed between
    # saving the manifest and putting the pointer: the next sync puts it again).
    if seen is not None and result.checkpoint < seen.seq and not checkpoint.is_seen(pointer, seen):
        report.problems.append(_remote_problem(
            "remote-catalog", f"{layout.LATEST_KEY} names checkpoint {result.checkpoint}, older than checkpoint"
            f" {seen.seq} this store published or cloned: the pointer was rolled back", layout.LATEST_KEY, None))
    broken = False
    for key in pointer.get("chain", []):
        if backend.head(key) is None:
            report.problems.append(_remote_problem(
                "remote-catalog", f"checkpoint object {key} (named by {layout.LATEST_KEY}) is missing", key, None))
            broken = True
    if broken or not read_data:
        return {}
    try:
        return remote_catalog_packs(backend)
    except BackendUnavailable:
        raise
    except VfsError as e:
        report.problems.append(_remote_problem("remote-catalog", str(e), layout.LATEST_KEY, None))
        return {}


def remote_catalog_packs(backend: Backend) -> dict[str, int]:
    """key -> size of every pack the remote's newest checkpoint names (the chain applied and verified)."""
    with tempfile.TemporaryDirectory(prefix="vfs-remote-catalog-") as tmp:
        checkpoint.restore(backend, Path(tmp))
        return copies.remote_pack_sizes(Path(tmp) / CATALOG_FILE)


# -- repair ---------------------------------------------------------------------------------------
def repair_remote(repo: Repository, backend: Backend, report: Report,
                  upload_checkpoint: Callable[[bool], None]) -> None:
    """Mend with the remote what `report` found (the store unmounted, its lock held); see the docstring.

    `upload_checkpoint(new_base)` uploads a checkpoint of the catalog now (a fresh base if asked).
    """
    backend = sealed_for(repo, backend)
    catalog = repo.catalog
    rows = catalog.remote_packs()
    # local chunks, from the remote's copy of their pack
    fetched: set[int] = set()
    for p in report.problems:
        if p.chunk is None or p.repaired or not p.needs_remote:
            continue
        pack = p.chunk.pack
        row = rows.get(PackNo(pack))
        if row is None:
            continue
        if pack not in fetched:
            try:
                repo.chunks.forget_pack(pack)  # a cached descriptor would keep reading the old file
                download_pack(backend, row[0], row[1], repo.chunks.pack_file(pack))
            except VfsError as e:
                log.warning("fsck: could not fetch pack %d from the remote: %s", pack, e)
                continue
            fetched.add(pack)
            log.info("fsck: pack %d fetched again from the remote (%s)", pack, row[0])
        if _entry_ok(repo, p):
            p.repaired = True
            p.needs_remote = False

    # remote pack objects, from intact local packs
    rewrote = False
    for p in report.problems:
        if p.kind not in ("remote-missing", "remote-size", "remote-corrupt") or p.repaired or p.pack is None:
            continue
        path = repo.chunks.pack_file(p.pack)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        key = layout.pack_key(codec.chunk_id(data))
        if key != p.key:
            if not _pack_entries_ok(repo, PackNo(p.pack), data):
                continue
            log.info("fsck: local pack %d no longer hashes to %s; uploading it as %s", p.pack, p.key, key)
        backend.put(key, data)
        if key != p.key:
            catalog.add_remote_pack(PackNo(p.pack), key, len(data))
            rewrote = True
        p.repaired = True
        log.info("fsck: pack %d put again on the remote as %s", p.pack, key)

    chain_broken = any(p.kind == "remote-catalog" and not p.repaired for p in report.problems)
    remote_only_damage = any(p.kind in REMOTE_KINDS and p.pack is None and p.kind != "remote-catalog"
                             and not p.repaired for p in report.problems)
    if chain_broken or rewrote or remote_only_damage:
        upload_checkpoint(chain_broken or remote_only_damage)
        for p in report.problems:
            if p.kind == "remote-catalog" or (p.kind in REMOTE_KINDS and p.pack is None):
                p.repaired = True  # the new checkpoint names only what the local catalog does
        log.info("fsck: uploaded a new catalog checkpoint")


def _entry_ok(repo: Repository, p: Problem) -> bool:
    assert p.chunk is not None
    try:
        return repo.chunks.verify_chunk(p.chunk) is None
    except OSError:
        return False


def _pack_entries_ok(repo: Repository, pack: PackNo, data: bytes) -> bool:
    """Whether every chunk row in `pack` is intact in `data` (the pack file's bytes)."""
    return repo.chunks.verify_pack_bytes(data, repo.catalog.chunk_locations_in(pack))


# -- gc -------------------------------------------------------------------------------------------
@dataclass
class RemoteGcResult:
    packs_forgotten: list[int] = field(default_factory=list)  # local rows deleted (step 1)
    objects_deleted: int = 0
    pack_objects_deleted: int = 0
    catalog_objects_deleted: int = 0
    bytes_freed: int = 0  # bytes of the objects deleted from the bucket
    checkpoint: int | None = None  # seq of the checkpoint that no longer names them

    def as_json(self) -> dict[str, Any]:
        return {"packs_forgotten": self.packs_forgotten, "objects_deleted": self.objects_deleted,
                "pack_objects_deleted": self.pack_objects_deleted,
                "catalog_objects_deleted": self.catalog_objects_deleted, "bytes_freed": self.bytes_freed,
                "checkpoint": self.checkpoint}


def dead_packs(repo: Repository) -> list[PackNo]:
    """The packs `forget_dead` would forget now (a dry run's answer), in order."""
    in_use = repo.catalog.packs_in_use()
    return sorted(p for p in repo.catalog.remote_packs() if p not in in_use and not repo.chunks.pack_file(p).exists())


def forget_dead(repo: Repository) -> list[int]:
    """Step 1: delete the remote rows of packs no chunk row names and that are not local files.

    (A local file without chunk rows is left to local gc: the uploader would put it back otherwise.)
    """
    gone = repo.catalog.forget_remote_packs(dead_packs(repo))
    if gone:
        log.info("remote gc: forgot %d remote pack row(s)", len(gone))
    return sorted(gone)


def sweep(repo: Repository, backend: Backend, result: RemoteGcResult, *,
          step: Callable[[str], None] = lambda what: None) -> None:
    """Steps 3 and 4: delete what neither the local catalog nor the uploaded checkpoint names.

    The caller uploaded a checkpoint after `forget_dead`, and holds off uploads until this returns.
    """
    backend = sealed_for(repo, backend)
    pointer = layout.unwrap_json(backend.get(layout.LATEST_KEY), layout.LATEST_KEY)
    result.checkpoint = int(pointer["seq"])
    keep = set(remote_catalog_packs(backend))  # what a clone of the bucket needs now
    keep |= {key for key, _ in repo.catalog.remote_packs().values()}
    manifest = checkpoint.Manifest.load(repo.path)
    keep_catalog = {layout.LATEST_KEY, *pointer["chain"], *(manifest.chain if manifest else [])}
    for prefix, kept in (("packs/", keep), ("catalog/", keep_catalog)):
        for key in list(backend.list(prefix)):
            if key in kept:
                continue
            size = backend.head(key)
            if size is None:
                continue
            step("delete-object")
            backend.delete(key)
            result.objects_deleted += 1
            result.bytes_freed += size
            if prefix == "packs/":
                result.pack_objects_deleted += 1
            else:
                result.catalog_objects_deleted += 1
    log.info("remote gc: %d object(s) deleted from %s, %d bytes freed", result.objects_deleted, backend.url,
             result.bytes_freed)


__all__ = ["REMOTE_KINDS", "RemoteCheck", "RemoteGcResult", "check_remote", "dead_packs", "forget_dead",
           "open_remote", "remote_only", "repair_remote", "sweep"]
