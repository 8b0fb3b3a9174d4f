"""The cache-aside read path and the cache step of writes, with the breaker and the trust rule.

Reads: one round trip to Redis (the entry and the change signal together); a fresh entry is a HIT; a
missing or soft-expired one is read from PostgreSQL and filled back (MISS) with a version-guarded
script; when the refresh fails the last-known-good copy is served (STALE). A missing entry asks the
key set first, so reads of keys that do not exist write nothing to Redis. When Redis fails, its breaker
is open, or it cannot be trusted (it lost state: its revision is missing or behind one this container
saw, or it just came back and the background sync has not run yet), PostgreSQL answers (BYPASS).

PostgreSQL is never on the path of a cached read: outbox replay, revision seeding and the comparison
with PostgreSQL run in the background sync (sync.py), which this path only wakes.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from flagservice import telemetry
from flagservice.breaker import CircuitBreaker
from flagservice.errors import CacheUnavailableError, FlagNotFoundError, StoreUnavailableError
from flagservice.flags.model import StoredFlag
from flagservice.l1 import L1Cache
from flagservice.listing import ListingReuse
from flagservice.ports import (
    CacheEntry,
    CacheOutcome,
    CacheRead,
    CacheSnapshot,
    FlagCache,
    FlagRepository,
    Guarded,
    Signal,
    WriteResult,
)

T = TypeVar("T")
R = TypeVar("R")  # what one cache read returns
A = TypeVar("A")  # what a read path answers
GAUGE_SECONDS = 1.0  # gauges (breaker, pool) are sampled once a second, not per request
LEASE_MS = 2000  # a refill lease outlives any database read (read deadline 1 s)
LEASE_WAIT = 0.2  # how long a follower waits for the lease holder's fill before reading itself
LEASE_POLL = 0.01
MAX_FLAGS = 10_000
WARM_FLAGS = 100  # bulk evaluation covers every flag of an environment
SNAPSHOT = "*"  # the hook key of the all-flags snapshot


class Unavailable(enum.Enum):
    """The cache could not be asked (failed, breaker open, or failed earlier in this request)."""

    CACHE = "unavailable"


UNAVAILABLE = Unavailable.CACHE
Answer = tuple[StoredFlag | None, CacheOutcome]


@dataclass
class RaceHooks:
    """Test seams at the two points where a concurrent write can get in (no-ops in production)."""

    after_repository_read: Callable[[str], None] = lambda key: None
    before_cache_step: Callable[[str], None] = lambda key: None


@dataclass(frozen=True)
class Lookup:
    """A flag read and where it came from."""

    flag: StoredFlag
    outcome: CacheOutcome


@dataclass(frozen=True)
class FlagSet:
    """Every live flag for bulk evaluation, the committed revision they are the state of, and the basis
    of their ETag (the revision, or for a STALE overlay the versions it is made of)."""

    flags: list[StoredFlag]
    revision: int
    outcome: CacheOutcome
    etag_basis: str


@dataclass
class CacheAside:
    repository: FlagRepository
    cache: FlagCache | None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    hooks: RaceHooks = field(default_factory=RaceHooks)
    clock: Callable[[], float] = time.monotonic
    l1: L1Cache[Any] = field(default_factory=lambda: L1Cache(max_age=1.0))
    listings: ListingReuse = field(default_factory=lambda: ListingReuse(limit=MAX_FLAGS))  # bulk reads in BYPASS
    on_suspect: Callable[[], object] = lambda: None  # wakes the background sync
    on_tick: Callable[[], object] = lambda: None  # every read (an inline sync's timer; no-op with the thread)
    high_water: int = 0  # the highest revision this container saw Redis hold
    trusted: bool = True  # False until the background sync has checked a Redis that lost state or came back
    outbox_pending: int = 0  # reported by the background sync, published with the gauges
    _last_gauges: float = float("-inf")
    _failed: bool = False
    _in_request: bool = False

    def begin(self) -> None:
        """Start of a request: after one Redis failure in a request, the rest of it skips Redis."""
        self._failed, self._in_request = False, True

    def cache_call(self, call: Callable[[FlagCache], T]) -> T | Literal[Unavailable.CACHE]:
        """Call Redis unless it failed in this request or its breaker is open."""
        if self.cache is None or self._failed or not self.breaker.allow():
            return UNAVAILABLE
        try:
            result = call(self.cache)
        except CacheUnavailableError as exc:
            self._failed = self._in_request  # outside a request scope each call stands alone
            self.breaker.record_failure()
            telemetry.record_count("CacheError")
            telemetry.logger.warning("cache unavailable", error=str(exc)[:200])
            return UNAVAILABLE
        if self.breaker.record_success():
            telemetry.logger.info("cache is back: reads bypass it until the background sync replayed the outbox")
            self.suspect()
        return result

    def suspect(self) -> None:
        """Stop trusting Redis until the background sync has compared it with PostgreSQL and repaired it."""
        self.distrust()
        self.on_suspect()

    def distrust(self) -> None:
        """Read PostgreSQL instead of Redis (BYPASS) until a sync pass repaired it (see synced)."""
        self.trusted = False
        self.l1.clear()

    def synced(self, revision: int) -> None:
        """The background sync repaired Redis up to `revision`: trust it again."""
        self.high_water = max(self.high_water, revision)
        self.trusted = True
        self.listings.clear()  # memory: a listing is only worth holding while bulk reads bypass Redis

    def _trust(self, signal: Signal) -> bool:
        """Redis is trusted unless it lost state: its revision behind one this container saw. A Redis
        without a revision (flushed, restarted empty) holds nothing of ours (every cache write needs the
        revision), so it is trusted: its misses refill it, and the first refill seeds the revision."""
        if signal.revision is None:
            return self.trusted
        if signal.revision < self.high_water:
            if self.trusted:
                telemetry.logger.warning("cache lost state", seen=self.high_water, cache=signal.revision)
                self.suspect()
            return False
        self.high_water = signal.revision
        return self.trusted

    def _observe(self, signal: Signal) -> None:
        """Validate L1 against the signal (nothing is kept against a missing revision)."""
        self.l1.observe(signal if signal.revision is not None else None)

    def _seeded(self, revision: int) -> int:
        """A flushed Redis (no revision) gets the revision of a refill's own database read, which is then
        what that refill's fill is guarded by: a write committed after that read either raises the
        revision first (the fill is refused) or found no revision to raise and is replayed by the sync."""
        self.cache_call(lambda cache: cache.seed_revision(revision))
        return revision

    # -- one flag -------------------------------------------------------------------------------------

    def lookup(self, key: str) -> Lookup:
        """The flag for `key`, or FlagNotFoundError / StoreUnavailableError (never a cache error)."""
        started = time.perf_counter()
        self.on_tick()
        flag, outcome = self._from_l1(key) or self._from_shared(key)
        if flag is not None and self.cache is not None:
            self.cache.count(key, hit=outcome in (CacheOutcome.HIT, CacheOutcome.STALE))
        telemetry.record_lookup(key, outcome.value, (time.perf_counter() - started) * 1000)
        if flag is None:
            raise FlagNotFoundError("no such flag", key=key, outcome=outcome.value)
        return Lookup(flag, outcome)

    def _validated_l1(self, key: str) -> tuple[bool, Any]:
        """An L1 entry, revalidated against the signal first if its last validation is > 250 ms old."""
        found, value = self.l1.get(key)
        if found and self.l1.needs_validation:
            signal = self.cache_call(lambda cache: cache.signal())
            if signal is UNAVAILABLE or not self._trust(signal):
                self.l1.clear()
                return False, None
            self._observe(signal)
            found, value = self.l1.get(key)
        return found, value

    def _from_l1(self, key: str) -> Answer | None:
        found, flag = self._validated_l1(key)
        return (flag, CacheOutcome.HIT) if found else None

    def _from_shared(self, key: str) -> Answer:
        """Redis, or PostgreSQL when Redis cannot answer; a follower of another container's refill waits
        up to LEASE_WAIT for it, then reads PostgreSQL itself (at most one read per process)."""
        wait = _LeaseWait()

        def answer(read: CacheRead) -> Answer | None:
            found = self._answer(key, read)
            if found is None and wait.over(awaiting_keys=read.keys_needed):
                return self._refill(key, read)
            return found

        return self._wait_for_shared(
            lambda cache: cache.read(key, lease_ms=LEASE_MS),
            signal_of=lambda read: read.signal,
            answer=answer,
            bypass=lambda read: self._bypass(key, read.entry if read is not None else None),
        )

    def _wait_for_shared(
        self,
        read: Callable[[FlagCache], R],
        *,
        signal_of: Callable[[R], Signal],
        answer: Callable[[R], A | None],
        bypass: Callable[[R | None], A],
    ) -> A:
        """The wait both reads share: PostgreSQL answers (`bypass`) when Redis cannot be asked, or with what
        Redis said when Redis cannot be trusted; otherwise `answer` decides, or returns None while another
        container refills what it needs (asked again every LEASE_POLL; `answer` keeps the deadline)."""
        retried = False
        while True:
            got = self.cache_call(read)
            if got is UNAVAILABLE:
                return bypass(None)
            if not self._trust(signal_of(got)):
                if self.trusted and not retried:  # an inline sync has just repaired it: read again
                    retried = True
                    continue
                return bypass(got)
            self._observe(signal_of(got))
            answered = answer(got)
            if answered is not None:
                return answered
            time.sleep(LEASE_POLL)

    def _answer(self, key: str, read: CacheRead) -> Answer | None:
        """What one cache read can answer; None while another container refills what this read needs."""
        entry = read.entry
        if read.absent:
            return None, CacheOutcome.HIT
        if entry is not None and entry.fresh(_now_ms()):
            if entry.flag is not None:
                self.l1.put(key, entry.flag)
            return entry.flag, CacheOutcome.HIT
        if read.leased:
            return self._refill(key, read)
        if entry is not None:  # expired, and another container is refreshing it: serve the previous value
            return entry.flag, CacheOutcome.HIT if self.repository.available() else CacheOutcome.STALE
        return None

    def _bypass(self, key: str, fallback: CacheEntry | None) -> Answer:
        """PostgreSQL answers alone; if it cannot either, an untrusted Redis copy is better than nothing."""
        self.l1.clear()
        try:
            return self.repository.get(key), CacheOutcome.BYPASS
        except StoreUnavailableError:
            if fallback is not None and fallback.flag is not None:
                return fallback.flag, CacheOutcome.STALE
            raise

    def _refill(self, key: str, read: CacheRead) -> Answer:
        """Read the flag from PostgreSQL and fill it (guarded); when this caller holds the key set's
        lease, the same database read brings every existing key, filled after the flag's own entry so
        a follower never finds the key in the set without its entry."""
        entry = read.entry
        keys: tuple[int, set[str]] | None = None
        try:
            if read.revision is None or (read.keys_needed and read.leased):
                revision, existing, flag = self.repository.keys_at_revision(key)
                keys = revision, existing
                observed = read.revision if read.revision is not None else self._seeded(revision)
            else:
                observed, flag = read.revision, self.repository.get(key)
        except StoreUnavailableError:
            if entry is not None and entry.flag is not None:
                return entry.flag, CacheOutcome.STALE
            raise
        self.hooks.after_repository_read(key)
        if flag is not None:
            self.fill(key, flag, observed)
            self.l1.put(key, flag)
        if keys is not None:
            self.cache_call(lambda cache: cache.fill_keys(keys[1], revision=keys[0], observed_revision=observed))
        return flag, CacheOutcome.MISS

    def fill(self, key: str, flag: StoredFlag, observed_revision: int) -> None:
        """Store what PostgreSQL said, unless a write was applied since `observed_revision` was read.

        `observed_revision` must have been read from Redis before the database read: that ordering is
        what lets the script refuse a fill that a write overtook.
        """
        self.cache_call(lambda c: c.fill(key, flag, version=flag.version, observed_revision=observed_revision))

    def fill_many(self, flags: list[StoredFlag], observed_revision: int) -> None:
        """`fill` of every flag in one round trip (a listed page), with the same guard."""
        if flags:
            self.cache_call(lambda c: c.fill_many(flags, observed_revision=observed_revision))

    # -- every flag (bulk evaluation) -----------------------------------------------------------------

    def all_flags(self, *, at_least: int | None = None) -> FlagSet:
        """Every live flag, from a snapshot never older than a write applied to Redis.

        The snapshot is built from one consistent database read (the flags and the committed revision
        they are the state of) and is current while no write with a higher revision was applied. Its
        rebuild has a lease like a flag's refill; while PostgreSQL cannot rebuild it, an outdated
        snapshot is served with every newer per-flag entry from Redis laid over it (STALE).
        `at_least` (an event's revision) skips an in-process snapshot older than it: Redis's is as new.
        """
        self.on_tick()
        found, held = self._validated_l1(SNAPSHOT)
        if found and (at_least is None or held.version >= at_least):
            return FlagSet(held.flags, held.version, CacheOutcome.HIT, str(held.version))
        wait = _LeaseWait()
        return self._wait_for_shared(
            lambda cache: cache.read_snapshot(lease_ms=LEASE_MS),
            signal_of=lambda got: got[1],
            answer=lambda got: self._bulk_answer(*got, waited=wait.over()),
            bypass=lambda got: self._bulk_bypass(got[0] if got is not None else None, at_least),
        )

    def _bulk_answer(
        self, snapshot: CacheSnapshot | None, signal: Signal, leased: bool, *, waited: bool
    ) -> FlagSet | None:
        revision = signal.revision or 0
        current = snapshot is not None and snapshot.version >= revision
        if snapshot is not None and current and snapshot.fresh(_now_ms()):
            self.l1.put(SNAPSHOT, snapshot)
            return FlagSet(snapshot.flags, snapshot.version, CacheOutcome.HIT, str(snapshot.version))
        if snapshot is not None and not self.repository.available():
            return self._overlaid(snapshot)  # no read waits on a database known to be down
        if leased or waited:
            return self._rebuild_snapshot(snapshot, signal)
        if snapshot is not None and current:  # expired, another container is rebuilding it
            return FlagSet(snapshot.flags, snapshot.version, CacheOutcome.HIT, str(snapshot.version))
        return None

    def _rebuild_snapshot(self, snapshot: CacheSnapshot | None, signal: Signal) -> FlagSet:
        listed = self._listed(snapshot)
        if isinstance(listed, FlagSet):
            return listed
        revision, flags = listed
        observed = signal.revision if signal.revision is not None else self._seeded(revision)
        self.hooks.after_repository_read(SNAPSHOT)
        stored = self.cache_call(lambda c: c.fill_snapshot(flags, revision=revision, observed_revision=observed))
        if stored is Guarded.STORED:
            self.l1.put(SNAPSHOT, CacheSnapshot(revision, flags, _now_ms() + 1))
        return FlagSet(flags, revision, CacheOutcome.MISS, str(revision))

    def _bulk_bypass(self, snapshot: CacheSnapshot | None, at_least: int | None = None) -> FlagSet:
        """Redis cannot answer: this process's last listing if PostgreSQL's revision has not moved since,
        else a new one (listing.py), never older than `at_least`; the ETag names the revision, as a
        snapshot's does."""
        self.l1.clear()
        listed = self._listed(snapshot, lambda: self.listings.current(self.repository, at_least=at_least))
        if isinstance(listed, FlagSet):
            return listed
        revision, flags = listed
        return FlagSet(flags, revision, CacheOutcome.BYPASS, str(revision))

    def _listed(
        self, snapshot: CacheSnapshot | None, listing: Callable[[], tuple[int, list[StoredFlag]]] | None = None
    ) -> tuple[int, list[StoredFlag]] | FlagSet:
        """Every flag and its revision from PostgreSQL; if it cannot answer, the STALE overlay of the
        last snapshot (StoreUnavailableError when there is none)."""
        try:
            return listing() if listing is not None else self.repository.list_at_revision(limit=MAX_FLAGS)
        except StoreUnavailableError:
            if snapshot is None:
                raise
            return self._overlaid(snapshot)

    def _overlaid(self, snapshot: CacheSnapshot) -> FlagSet:
        """An outdated snapshot with every newer per-flag entry in Redis laid over it (deletes included, and
        flags created since, from the keys of the last writes): never an older snapshot over a newer kill switch.
        Its ETag names the versions it is made of."""
        written = self.cache_call(lambda cache: cache.written_since(snapshot.version))
        created = sorted(written - {flag.key for flag in snapshot.flags}) if isinstance(written, set) else []
        got = self.cache_call(lambda cache: cache.read_many([flag.key for flag in snapshot.flags] + created))
        entries = got[0] if got is not UNAVAILABLE else {}
        flags: list[StoredFlag] = []
        for flag in snapshot.flags:
            entry = entries.get(flag.key)
            newer = entry is not None and entry.version > flag.version
            if not newer:
                flags.append(flag)
            elif entry is not None and entry.flag is not None:
                flags.append(entry.flag)
        flags += [entry.flag for key in created if (entry := entries.get(key)) and entry.flag is not None]
        flags.sort(key=lambda flag: flag.key)
        basis = f"{snapshot.version}~" + ",".join(f"{flag.key}={flag.version}" for flag in flags)
        return FlagSet(flags, snapshot.version, CacheOutcome.STALE, basis)

    # -- writes ---------------------------------------------------------------------------------------

    def apply_write(self, result: WriteResult) -> bool:
        """A committed write's cache step; True when Redis took it (the outbox row can be marked applied)."""
        self.hooks.before_cache_step(result.key)
        self.l1.clear()  # read-your-writes in this container, without waiting for revalidation
        self.listings.clear()
        outcome = self.cache_call(
            lambda c: c.apply_write(result.key, result.flag, version=result.version, revision=result.revision)
        )
        if outcome is Guarded.NO_REVISION:
            self.on_suspect()  # the background sync seeds the revision and replays this write's row
        elif outcome is UNAVAILABLE:
            self.suspect()  # Redis may still answer reads with what this write replaced: not from here
        return outcome is Guarded.STORED

    # -- container start and request end --------------------------------------------------------------

    def warm(self, *, limit: int = WARM_FLAGS) -> int:
        """Load the most-read flags (counted across all containers) into L1: two round trips, no database.

        Runs in Lambda's init phase and at local worker start; bounded by the Redis timeouts, and
        every error is swallowed (a cold container simply starts cold). Returns how many it loaded.
        """
        keys = self.cache_call(lambda cache: cache.most_read(limit))
        if keys is UNAVAILABLE or not keys:
            return 0
        got = self.cache_call(lambda cache: cache.read_many(keys))
        if got is UNAVAILABLE or not self._trust(got[1]):
            return 0
        entries, signal = got
        self._observe(signal)
        now_ms = _now_ms()
        fresh = {key: entry.flag for key, entry in entries.items() if entry.fresh(now_ms) and entry.flag is not None}
        for key, flag in fresh.items():
            self.l1.put(key, flag)
        return len(fresh)

    def _send_stats(self, cache: FlagCache) -> None:
        """Send the request's counts. A send that does not wait proves nothing about Redis, so unlike
        `cache_call` it never counts as a success for the breaker (only its failures count)."""
        if self._failed or not self.breaker.allow():
            return
        try:
            cache.flush_stats()
        except CacheUnavailableError:
            self._failed = True
            self.breaker.record_failure()
            telemetry.record_count("CacheError")

    def finish(self) -> None:
        """End of a request: its counts go to Redis (a send, no wait); once a second, the gauges too."""
        self._in_request = False
        if self.cache is None:
            return
        self._send_stats(self.cache)
        if self.clock() - self._last_gauges >= GAUGE_SECONDS:
            self._last_gauges = self.clock()
            telemetry.record_count("CacheBreakerOpen", 0 if self.breaker.allow() else 1)
            telemetry.record_count("RedisPoolInUse", self.cache.pool_in_use())
            telemetry.record_count("OutboxPending", self.outbox_pending)


@dataclass
class _LeaseWait:
    """How long a follower waits for another container's refill: LEASE_WAIT, started again when what it
    waits for changes (a missing flag: first the key set's rebuild, then the flag's own refill)."""

    awaiting_keys: bool = True
    deadline: float = field(default_factory=lambda: time.monotonic() + LEASE_WAIT)

    def over(self, *, awaiting_keys: bool = True) -> bool:
        if awaiting_keys != self.awaiting_keys:
            self.awaiting_keys, self.deadline = awaiting_keys, time.monotonic() + LEASE_WAIT
        return time.monotonic() >= self.deadline


def _now_ms() -> int:
    return int(time.time() * 1000)
