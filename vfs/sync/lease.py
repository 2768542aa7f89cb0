"""The writer lease: at most one store at a time publishes a volume's checkpoints (docs/design.md
"Writer lease").

Vocabulary. A *claim* is an object under `leases/` naming a store that claims the volume's *epoch*
N (a writer's tenure; every take raises it by one): `leases/<N, 16 digits>` where the endpoint
honours conditional PUTs (created with `If-None-Match: *`, so one store alone can create it), else
`leases/<N>-<writer id>` (each store its own key, written then verified against the others'). The
*holder* is the store of the highest-epoch claim when that claim is the only one at its epoch and not
released; a claim *expires* at its `expires_ns`, and another machine treats it as expired only
`skew` seconds later (the clock-skew bound). A store's *writer id* is random, kept in
`STORE/sync/lease.json` with the epoch it holds or held, and with why it lost the lease if it did.

Fencing: the pointer carries the epoch of its writer, and the writer checks its claim is still the
highest right before it puts the pointer (`check`): a store that lost the lease publishes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from vfs.backend import Backend
from vfs.errors import BackendNotFound, CorruptChunk, LeaseHeld, RemoteConflict, StoreError, UsageError
from vfs.fsutil import private_dir, replace_file
from vfs.sync import checkpoint, layout

log = logging.getLogger(__name__)

PREFIX = "leases/"
PROBE_PREFIX = layout.PROBE_PREFIX
LOCAL_FILE = "lease.json"  # under STORE/sync/
_NS = 1_000_000_000
P = ParamSpec("P")
R = TypeVar("R")


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


@dataclass(frozen=True)
class Timing:
    """How long a lease lasts and what clocks are assumed to do (seconds).

    ttl: a claim expires `ttl` after its holder last renewed it (renewed every ttl/3 while it mounts or
        syncs). skew: the most two machines' wall clocks may differ; another store treats a claim as
        expired only `skew` after its expiry. settle: where conditional PUTs are not honoured, how long
        a store waits between writing its claim and listing the others (for listings that lag writes).
    """

    ttl: float = 300.0
    skew: float = 30.0
    settle: float = 2.0

    @classmethod
    def from_env(cls) -> Timing:
        """The defaults, or VFS_LEASE_TTL / VFS_LEASE_SKEW / VFS_LEASE_SETTLE (tests make them short)."""
        return cls(_env_seconds("VFS_LEASE_TTL", cls.ttl), _env_seconds("VFS_LEASE_SKEW", cls.skew),
                   _env_seconds("VFS_LEASE_SETTLE", cls.settle))


@dataclass
class Claim:
    """One claim object (its JSON fields, plus the key it was read from)."""

    epoch: int
    writer: str  # the claiming store's writer id
    store: str = ""  # its directory, host and process, for messages
    host: str = ""
    pid: int = 0
    volume: str = ""
    since_ns: int = 0  # when it took the lease
    renewed_ns: int = 0
    expires_ns: int = 0
    released: bool = False
    key: str = field(default="", compare=False)

    def body(self) -> bytes:
        d = asdict(self)
        del d["key"]
        return layout.wrap_json(d)

    @classmethod
    def parse(cls, key: str, data: bytes | None) -> Claim:
        """The claim in `data`; one that cannot be read counts as an expired, unreleased claim of its
        key's epoch (so it is never overlooked, and `lease take` can replace it)."""
        epoch = _epoch_of(key)
        if data is not None:
            try:
                d = layout.unwrap_json(data, key)
                known = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "key"}
                claim = cls(**known)
                if claim.epoch == epoch:
                    claim.key = key
                    return claim
            except (CorruptChunk, StoreError, TypeError, ValueError):
                pass
        return cls(epoch=epoch, writer="?", store=f"(unreadable claim {key})", key=key)

    def expired(self, now_ns: int, timing: Timing) -> bool:
        """Whether another machine may treat it as expired (its wall clock at `now_ns`)."""
        return now_ns > self.expires_ns + int(timing.skew * _NS)

    def describe(self) -> str:
        who = f"the store {self.store} on {self.host} (pid {self.pid})" if self.host else self.store
        state = "released" if self.released else f"until {_when(self.expires_ns)}"
        return f"{who}, writer since {_when(self.since_ns)} (lease epoch {self.epoch}, {state})"


def _epoch_of(key: str) -> int:
    name = key[len(PREFIX):].split("-", 1)[0]
    return int(name) if name.isdigit() else 0


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / _NS).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if ns else "an unknown time"


def read_claims(backend: Backend) -> list[Claim]:
    """Every claim in the bucket, lowest epoch first."""
    claims = []
    for key in list(backend.list(PREFIX)):
        try:
            data: bytes | None = backend.get(key)
        except BackendNotFound:
            continue  # deleted meanwhile (a superseded claim pruned)
        claims.append(Claim.parse(key, data))
    claims.sort(key=lambda c: (c.epoch, c.key))
    return claims


def top_claims(claims: list[Claim]) -> list[Claim]:
    """The claims of the highest epoch (one, unless stores raced or one died mid-take)."""
    if not claims:
        return []
    top = claims[-1].epoch
    return [c for c in claims if c.epoch == top]


def honours_conditional_put(backend: Backend) -> bool:
    """Whether the endpoint refuses a second `If-None-Match: *` PUT of one key (AWS S3, MinIO, moto do;
    Garage accepts and ignores the header). Two PUTs to a fresh probe key, which is then deleted."""
    key = PROBE_PREFIX + secrets.token_hex(8)
    try:
        first = backend.put_if_absent(key, b"probe")
        second = backend.put_if_absent(key, b"probe")
    except NotImplementedError:
        return False
    finally:
        backend.delete(key)
    honoured = first and not second
    log.info("%s %s conditional PUTs", backend.url, "honours" if honoured else "ignores")
    return honoured


@dataclass
class LocalLease:
    """What a store knows of its own lease (`STORE/sync/lease.json`)."""

    writer: str = field(default_factory=lambda: secrets.token_hex(8))
    epoch: int = 0  # the epoch it holds or last held (0: never)
    key: str = ""  # its claim's key
    held: bool = False
    since_ns: int = 0
    expires_ns: int = 0
    lost: str | None = None  # why it is no longer the writer (another store took the lease)

    @classmethod
    def load(cls, store: Path) -> LocalLease:
        path = store / "sync" / LOCAL_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return cls()
        except (ValueError, TypeError) as e:
            raise StoreError(f"{path} is damaged ({e}); remove it, then 'vfs lease take' this store") from None

    def save(self, store: Path) -> None:
        private_dir(store / "sync")
        replace_file(store / "sync" / LOCAL_FILE, json.dumps(asdict(self)).encode())

    def status(self) -> dict[str, Any]:
        """What `vfs status` shows: whether this store is the volume's writer, and if not, why."""
        return {"writer": self.held and self.lost is None, "epoch": self.epoch or None,
                "expires_ns": self.expires_ns if self.held else None, "lost": self.lost}


def _locked(fn: Callable[Concatenate[WriterLease, P], R]) -> Callable[Concatenate[WriterLease, P], R]:
    def locked(self: WriterLease, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return fn(self, *args, **kwargs)
    locked.__doc__ = fn.__doc__
    return locked


class _Raced(LeaseHeld):
    """Another store claimed the same epoch at the same moment (this store backed off)."""


class WriterLease:
    """The lease of the store at `store` on the volume `volume` in `backend`. Blocking: call from threads.

    Args:
        advice: the take command to name in messages (`vfs lease take STORE`).
        wall, mono, sleep: clocks, for tests.
    """

    def __init__(self, store: Path, backend: Backend, volume: str, *, timing: Timing | None = None,
                 wall: Callable[[], int] = time.time_ns, mono: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.store = store
        self.backend = backend
        self.volume = volume
        self.timing = timing or Timing.from_env()
        self.local = LocalLease.load(store)
        if not (store / "sync" / LOCAL_FILE).exists():
            self.local.save(store)  # the writer id stays the store's from now on
        self._wall, self._mono, self._sleep = wall, mono, sleep
        self._renewed_mono = -1e18  # when the last renewal (or take) started, on `mono`
        self._conditional: bool | None = None  # probed at the first take
        self._lock = threading.RLock()  # the uploader renews in one thread while a round checks in another

    @property
    def epoch(self) -> int:
        return self.local.epoch if self.local.held else 0

    @property
    def held(self) -> bool:
        return self.local.held and self.local.lost is None

    def _take_advice(self) -> str:
        return f"'vfs lease take {self.store}' takes it once it is released or expires, '--force' at once"

    # -- taking ----------------------------------------------------------------------------------
    @_locked
    def acquire(self, *, take_expired: bool = False, force: bool = False, pointer_epoch: int = 0,
                attempt: int = 1) -> bool:
        """Hold the lease: keep it if this store holds it, take it if it is free (no claim, or released),
        expired (`take_expired`), or held by another (`force`). True if a new epoch was taken.

        `pointer_epoch`: the epoch the volume's pointer carries (a new epoch is above it).

        Raises:
            LeaseHeld: another store holds it (named, with how to take over), or took it at the same moment.
        """
        claims = read_claims(self.backend)
        top = top_claims(claims)
        mine = [c for c in top if c.writer == self.local.writer and c.epoch == self.local.epoch]
        if mine and len(top) == 1 and not mine[0].released and self.local.lost is None:
            self.renew(claims)
            return False
        higher = [c for c in top if c.epoch > self.local.epoch]
        if self.local.held and self.local.lost is None and higher:
            self._record_lost(higher[-1].describe())  # taken while this store was down (or not looking)
        now = self._wall()
        rivals = [c for c in top if c.writer != self.local.writer and not c.released]
        live = [c for c in rivals if not c.expired(now, self.timing)]
        if live and not force:
            holder = live[0]
            if not take_expired:
                raise LeaseHeld(f"{self.backend.url} has another writer: {holder.describe()}; {self._take_advice()}")
            raise LeaseHeld(f"{self.backend.url} has another writer: {holder.describe()}; it expires at"
                            f" {_when(holder.expires_ns + int(self.timing.skew * _NS))} (with the clock-skew"
                            " margin); 'vfs lease take --force' takes it at once")
        if rivals and not (take_expired or force):
            raise LeaseHeld(f"{self.backend.url} has another writer whose lease expired: {rivals[0].describe()};"
                            f" {self._take_advice()}")
        if live:
            log.info("taking the lease of %s by force from %s: it can no longer publish", self.backend.url,
                     live[0].describe())  # `vfs lease take --force` warns the user itself
        epoch = max([c.epoch for c in claims] + [pointer_epoch, self.local.epoch]) + 1
        try:
            self._claim(epoch)
        except _Raced:
            if attempt >= 3:
                raise
            # Racers may all have backed off: try again after a random pause (a winner then refuses us).
            self._sleep(random.uniform(self.timing.settle, 4 * self.timing.settle))
            return self.acquire(take_expired=take_expired, force=force, pointer_epoch=pointer_epoch,
                                attempt=attempt + 1)
        return True

    def _claim(self, epoch: int) -> None:
        if self._conditional is None:
            self._conditional = honours_conditional_put(self.backend)
        start_mono, now = self._mono(), self._wall()
        claim = self._claim_body(epoch, since_ns=now, now_ns=now)
        if self._conditional:
            claim.key = f"{PREFIX}{epoch:016d}"
            if not self.backend.put_if_absent(claim.key, claim.body()):
                found = Claim.parse(claim.key, self._get(claim.key))
                if found.writer != self.local.writer or found.since_ns != claim.since_ns:  # not our own resent PUT
                    raise _Raced(f"another store took the lease of {self.backend.url} at the same moment:"
                                 f" {found.describe()}")
        else:
            claim.key = f"{PREFIX}{epoch:016d}-{self.local.writer}"
            self.backend.put(claim.key, claim.body())
            self._sleep(self.timing.settle)  # listings that lag behind writes have caught up then
        rivals = [c for c in read_claims(self.backend) if c.epoch >= epoch and c.key != claim.key]
        if rivals:  # we raced: all but one back off (maybe all), never two go on
            self.backend.delete(claim.key)
            raise _Raced(f"another store took the lease of {self.backend.url} at the same moment:"
                            f" {rivals[-1].describe()}")
        self._renewed_mono = start_mono
        self.local = LocalLease(writer=self.local.writer, epoch=epoch, key=claim.key, held=True,
                                since_ns=claim.since_ns, expires_ns=claim.expires_ns)
        self.local.save(self.store)
        log.info("took the writer lease of %s (epoch %d)", self.backend.url, epoch)

    def _claim_body(self, epoch: int, *, since_ns: int, now_ns: int, released: bool = False) -> Claim:
        return Claim(epoch=epoch, writer=self.local.writer, store=str(self.store), host=socket.gethostname(),
                     pid=os.getpid(), volume=self.volume, since_ns=since_ns, renewed_ns=now_ns,
                     expires_ns=now_ns + int(self.timing.ttl * _NS), released=released)

    def _get(self, key: str) -> bytes | None:
        try:
            return self.backend.get(key)
        except BackendNotFound:
            return None

    def hold(self, check_head: Callable[[], None], *, seen_epoch: int = 0, take_expired: bool = False,
             force: bool = False) -> bool:
        """`acquire`, and after a take make sure this store can continue the volume: `check_head()` (the
        strict head check: the pointer is one this store published or cloned from) must pass, else the
        take is undone (`give_back`) and its error raised. True if a new epoch was taken.

        `seen_epoch`: the epoch of the newest pointer this store knows (its manifest's).

        Raises:
            LeaseHeld: as `acquire`. RemoteConflict: this store is behind the volume (the take was undone).
        """
        try:
            pointer = checkpoint.read_pointer(self.backend)
        except CorruptChunk:
            pointer = None
        epoch = max(seen_epoch, checkpoint.pointer_epoch(pointer) if pointer is not None else 0)
        with self._lock:
            if not self.acquire(pointer_epoch=epoch, take_expired=take_expired, force=force):
                return False
            try:
                check_head()
            except LeaseHeld:
                raise
            except RemoteConflict:
                self.give_back()
                raise
            for old in read_claims(self.backend):  # superseded: the highest epoch alone decides who holds
                if old.epoch < self.local.epoch:
                    self.backend.delete(old.key)
            return True

    # -- holding ---------------------------------------------------------------------------------
    @_locked
    def check(self, claims: list[Claim] | None = None) -> None:
        """Raise unless this store still holds the lease: its claim is the only one at the highest epoch,
        and has not run out by this machine's clock (else it is renewed first, if still the highest).
        Called right before the pointer is put.

        Raises:
            LeaseHeld: it does not (the loss is recorded in the store: `vfs status` says so).
        """
        if self.local.lost is not None:
            raise LeaseHeld(self.local.lost)
        if not self.local.held:
            raise LeaseHeld(f"this store does not hold the writer lease of {self.backend.url};"
                            f" {self._take_advice()}")
        if claims is None:
            claims = read_claims(self.backend)
        top = top_claims(claims)
        if len(top) == 1 and top[0].key == self.local.key and top[0].writer == self.local.writer \
                and not top[0].released:
            if self._mono() - self._renewed_mono > self.timing.ttl / 3:
                self._renew_claim(top[0])
            return
        others = [c for c in top if c.key != self.local.key]
        self._record_lost(others[-1].describe() if others else "nobody (its claim is gone)")
        raise LeaseHeld(self.local.lost)

    def _record_lost(self, by: str) -> None:
        self.local.lost = (f"this store is no longer the writer of {self.backend.url}: the lease (epoch"
                           f" {self.local.epoch}) was taken by {by}; it publishes nothing there and keeps all"
                           f" its data; to write the volume again, clone it into a new store")
        self.local.save(self.store)
        log.info("%s", self.local.lost)  # raised (and logged by the uploader, or shown by the CLI) by the caller

    def renew(self, claims: list[Claim] | None = None) -> None:
        """Extend the claim (while it is still this store's; raises as `check`)."""
        self._renewed_mono = -1e18  # forces the renewal in check
        self.check(claims)

    def _renew_claim(self, claim: Claim) -> None:
        start, now = self._mono(), self._wall()
        fresh = self._claim_body(claim.epoch, since_ns=claim.since_ns, now_ns=now)
        self.backend.put(self.local.key, fresh.body())
        self._renewed_mono = start
        self.local.expires_ns = fresh.expires_ns
        self.local.save(self.store)

    def valid_for(self) -> float:
        """Seconds the lease is still this store's by its own clock (others wait `skew` more)."""
        return self.timing.ttl - (self._mono() - self._renewed_mono) if self.held else 0.0

    @_locked
    def release(self) -> bool:
        """Give the lease up at once (the claim is kept, marked released, so the epoch goes on rising).
        False if this store did not hold it."""
        if not self.local.held:
            return False
        claims = read_claims(self.backend)
        top = top_claims(claims)
        if self.local.lost is None and len(top) == 1 and top[0].key == self.local.key:
            now = self._wall()
            self.backend.put(self.local.key, self._claim_body(self.local.epoch, since_ns=top[0].since_ns,
                                                              now_ns=now, released=True).body())
            log.info("released the writer lease of %s (epoch %d)", self.backend.url, self.local.epoch)
        self.local.held = False
        self.local.save(self.store)
        return True

    @_locked
    def give_back(self) -> None:
        """Undo a take that must not stand (this store turned out to be behind the volume): delete the
        claim, so the previous holder's is the highest again."""
        if self.local.held and self.local.lost is None:
            self.backend.delete(self.local.key)
        self.local.held = False
        self.local.save(self.store)


def status(backend: Backend, local: LocalLease, timing: Timing | None = None) -> dict[str, Any]:
    """The volume's lease as `vfs lease status` shows it: the holder's claim, and this store's part."""
    timing = timing or Timing.from_env()
    claims = read_claims(backend)
    top = top_claims(claims)
    now = time.time_ns()
    holder = top[0] if len(top) == 1 else None
    d: dict[str, Any] = {
        "remote": backend.url,
        "epoch": top[0].epoch if top else 0,
        "holder": None if holder is None else {k: v for k, v in asdict(holder).items() if k != "key"},
        "contested": len(top) > 1,
        "state": ("free" if not top else "contested" if holder is None else "released" if holder.released
                  else "expired" if holder.expired(now, timing) else "held"),
        "this_store": {"writer_id": local.writer,
                       "writer": holder is not None and holder.writer == local.writer and not holder.released
                       and local.held and local.lost is None, "lost": local.lost},
    }
    return d
