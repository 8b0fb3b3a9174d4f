"""The cache-aside read path and the cache step of writes, with the breaker and the outbox.

Reads: one round trip to Redis (the entry and the environment's revision together); a fresh entry is
a HIT; a missing or soft-expired one is read from PostgreSQL and filled back (MISS) with a
version-guarded script; when the refresh fails the last-known-good copy is served (STALE); when
Redis fails or its breaker is open, PostgreSQL answers alone (BYPASS) and nothing waits on Redis.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flagservice import telemetry
from flagservice.breaker import CircuitBreaker
from flagservice.errors import CacheUnavailableError, FlagNotFoundError, StoreUnavailableError
from flagservice.flags.model import StoredFlag
from flagservice.l1 import L1Cache
from flagservice.ports import CacheOutcome, CacheRead, CacheSnapshot, FlagCache, FlagRepository, Guarded, WriteResult

T = TypeVar("T")
GAUGE_SECONDS = 1.0  # gauges (breaker, pool) are sampled once a second, not per request
LEASE_MS = 2000  # a refill lease outlives any database read (statement timeout 2 s)
LEASE_WAIT = 0.2  # how long a follower waits for the lease holder's fill before reading itself
LEASE_POLL = 0.01
MAX_FLAGS = 10_000
WARM_FLAGS = 100  # bulk evaluation covers every flag of an environment
SNAPSHOT = "*"  # the hook key of the all-flags snapshot


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


@dataclass
class CacheAside:
    repository: FlagRepository
    cache: FlagCache | None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    hooks: RaceHooks = field(default_factory=RaceHooks)
    outbox_interval: float = 2.0
    clock: Callable[[], float] = time.monotonic
    l1: L1Cache[Any] = field(default_factory=lambda: L1Cache(max_age=1.0))
    _last_replay: float = float("-inf")
    _last_stats_flush: float = float("-inf")
    _failed: bool = False

    def begin(self) -> None:
        """Start of a request: after one Redis failure in a request, the rest of it skips Redis."""
        self._failed = False

    def cache_call(self, call: Callable[[FlagCache], T]) -> T | None:
        """Call Redis unless it failed in this request or its breaker is open; None means "unavailable"."""
        if self.cache is None or self._failed or not self.breaker.allow():
            return None
        try:
            result = call(self.cache)
        except CacheUnavailableError as exc:
            self._failed = True
            self.breaker.record_failure()
            telemetry.record_count("CacheError")
            telemetry.logger.warning("cache unavailable", error=str(exc)[:200])
            return None
        if self.breaker.record_success():
            telemetry.logger.info("cache is back: replaying the outbox before trusting it")
            self.replay_outbox()
            return self.cache_call(call)  # the probe's answer predates the replay: ask again, never serve it
        return result

    def lookup(self, key: str) -> Lookup:
        """The flag for `key`, or FlagNotFoundError / StoreUnavailableError (never a cache error)."""
        started = time.perf_counter()
        self._replay_if_due()
        flag, outcome = self._from_l1(key) or self._from_shared(key)
        if self.cache is not None:
            self.cache.count(key, hit=outcome in (CacheOutcome.HIT, CacheOutcome.STALE))
        telemetry.record_lookup(key, outcome.value, (time.perf_counter() - started) * 1000)
        if flag is None:
            raise FlagNotFoundError("no such flag", key=key, outcome=outcome.value)
        return Lookup(flag, outcome)

    def _validated_l1(self, key: str) -> tuple[bool, Any]:
        """An L1 entry, revalidated against the revision first if its last validation is > 250 ms old."""
        found, value = self.l1.get(key)
        if found and self.l1.needs_validation:
            seen = self.cache_call(lambda cache: [cache.revision()])
            if seen is None:
                self.l1.clear()
                return False, None
            self.l1.observe(seen[0])
            found, value = self.l1.get(key)
        return found, value

    def _from_l1(self, key: str) -> tuple[StoredFlag | None, CacheOutcome] | None:
        found, flag = self._validated_l1(key)
        return (flag, CacheOutcome.HIT) if found else None

    def _from_shared(self, key: str) -> tuple[StoredFlag | None, CacheOutcome]:
        read = self.cache_call(lambda cache: cache.read(key, lease_ms=LEASE_MS))
        if read is None:
            self.l1.clear()
            return self.repository.get(key), CacheOutcome.BYPASS
        self.l1.observe(read.revision)
        entry = read.entry
        if entry is not None and entry.fresh(int(time.time() * 1000)):
            self.l1.put(key, entry.flag)
            return entry.flag, CacheOutcome.HIT
        if not read.leased:
            if entry is not None:
                return entry.flag, CacheOutcome.HIT  # another container is refilling it: serve the previous value
            read = self._await_refill(key) or read
            if read.entry is not None and not read.leased:
                self.l1.put(key, read.entry.flag)
                return read.entry.flag, CacheOutcome.HIT
        return self._refill(key, read)

    def _await_refill(self, key: str) -> CacheRead | None:
        """Wait briefly for the lease holder's fill; take the lease over if it lapses (its holder died)."""
        deadline = time.monotonic() + LEASE_WAIT
        while time.monotonic() < deadline:
            time.sleep(LEASE_POLL)
            read = self.cache_call(lambda cache: cache.read(key, lease_ms=LEASE_MS))
            if read is None or read.entry is not None or read.leased:
                return read
        return None

    def _refill(self, key: str, read: CacheRead) -> tuple[StoredFlag | None, CacheOutcome]:
        entry = read.entry
        try:
            observed = read.revision if read.revision is not None else self.seed_revision()
            flag = self.repository.get(key)
        except StoreUnavailableError:
            if entry is not None and entry.flag is not None:
                return entry.flag, CacheOutcome.STALE
            raise
        self.hooks.after_repository_read(key)
        self.fill(key, flag, observed)
        self.l1.put(key, flag)
        return flag, CacheOutcome.MISS

    def all_flags(self) -> tuple[list[StoredFlag], int, CacheOutcome]:
        """Every live flag and the revision they belong to, from the snapshot when it is current.

        The snapshot is valid only for the revision it was built at, so writers never touch it: a
        write moves the revision on and the next bulk read rebuilds it (one database read).
        """
        found, held = self._validated_l1(SNAPSHOT)
        if found:
            return held.flags, held.version, CacheOutcome.HIT
        read = self.cache_call(lambda cache: cache.read_snapshot())
        if read is None:
            self.l1.clear()
            current = self.repository.revision()  # before the list: an ETag never claims newer flags
            return self._listed(), current, CacheOutcome.BYPASS
        snapshot, revision = read
        self.l1.observe(revision)
        now_ms = int(time.time() * 1000)
        if snapshot is not None and snapshot.version == revision and snapshot.fresh(now_ms):
            self.l1.put(SNAPSHOT, snapshot)
            return snapshot.flags, snapshot.version, CacheOutcome.HIT
        try:
            observed = revision if revision is not None else self.seed_revision()
            flags = self._listed()
        except StoreUnavailableError:
            if snapshot is None:
                raise
            return snapshot.flags, snapshot.version, CacheOutcome.STALE
        self.hooks.after_repository_read(SNAPSHOT)
        stored = self.cache_call(lambda cache: cache.fill_snapshot(flags, observed_revision=observed))
        if stored is Guarded.STORED:
            self.l1.put(SNAPSHOT, CacheSnapshot(observed, flags, now_ms + 1))
        return flags, observed, CacheOutcome.MISS

    def _listed(self) -> list[StoredFlag]:
        return self.repository.list_flags(after=None, limit=MAX_FLAGS)

    def fill(self, key: str, flag: StoredFlag | None, observed_revision: int | None) -> None:
        """Store what PostgreSQL said, unless a write was applied since `observed_revision` was read.

        `observed_revision` must have been read (from Redis, or seeded from PostgreSQL) before the
        database read: that ordering is what lets the script refuse a fill that a write overtook.
        """
        version = flag.version if flag is not None else 0
        if observed_revision is None:
            self._try_seed()
            return
        result = self.cache_call(lambda c: c.fill(key, flag, version=version, observed_revision=observed_revision))
        if result is Guarded.NO_REVISION:
            self._try_seed()

    def seed_revision(self) -> int:
        """After a flush or restart the revision copy is gone: copy it back from PostgreSQL's sequence."""
        revision = self.repository.revision()
        self.cache_call(lambda cache: cache.seed_revision(revision))
        return revision

    def _try_seed(self) -> None:
        with contextlib.suppress(StoreUnavailableError):
            self.seed_revision()

    def apply_write(self, result: WriteResult) -> bool:
        """A committed write's cache step; True when Redis took it (the outbox row can go)."""
        self.hooks.before_cache_step(result.key)
        self.l1.clear()  # read-your-writes in this container, without waiting for revalidation
        return self._apply(result.key, result.flag, result.version, result.revision)

    def _apply(self, key: str, flag: StoredFlag | None, version: int, revision: int) -> bool:
        outcome = self.cache_call(lambda c: c.apply_write(key, flag, version=version, revision=revision))
        if outcome is Guarded.NO_REVISION:
            self._try_seed()
            outcome = self.cache_call(lambda c: c.apply_write(key, flag, version=version, revision=revision))
        return outcome is Guarded.STORED

    def _replay_if_due(self) -> None:
        if self.cache is not None and self.clock() - self._last_replay >= self.outbox_interval:
            self.replay_outbox()

    def replay_outbox(self) -> int:
        """Apply every pending cache step with the flag's current state; return how many were cleared."""
        self._last_replay = self.clock()
        try:
            pending = self.repository.pending_outbox(limit=100)
            telemetry.record_count("OutboxPending", len(pending))
            if not pending:
                return 0
            current = self.repository.get_many(sorted({entry.key for entry in pending}))
        except StoreUnavailableError:
            return 0
        revision = max(entry.revision for entry in pending)
        done = [e.id for e in pending if self._replay_one(e.key, current.get(e.key), e.version, revision)]
        try:
            self.repository.clear_outbox(done)
        except StoreUnavailableError:
            return 0
        return len(done)

    def _replay_one(self, key: str, flag: StoredFlag | None, version: int, revision: int) -> bool:
        return self._apply(key, flag, flag.version if flag is not None else version, revision)

    def warm(self, *, limit: int = WARM_FLAGS) -> int:
        """Load the most-read flags (counted across all containers) into L1: two round trips, no database.

        Runs in Lambda's init phase and at local worker start; bounded by the Redis timeouts, and
        every error is swallowed (a cold container simply starts cold). Returns how many it loaded.
        """
        keys = self.cache_call(lambda cache: cache.most_read(limit)) or []
        got = self.cache_call(lambda cache: cache.read_many(keys)) if keys else None
        if got is None:
            return 0
        entries, revision = got
        self.l1.observe(revision)
        now_ms = int(time.time() * 1000)
        fresh = {key: entry for key, entry in entries.items() if entry.fresh(now_ms)}
        for key, entry in fresh.items():
            self.l1.put(key, entry.flag)
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
        if self.cache is None:
            return
        self._send_stats(self.cache)
        if self.clock() - self._last_stats_flush >= GAUGE_SECONDS:
            self._last_stats_flush = self.clock()
            telemetry.record_count("CacheBreakerOpen", 0 if self.breaker.allow() else 1)
            telemetry.record_count("RedisPoolInUse", self.cache.pool_in_use())
