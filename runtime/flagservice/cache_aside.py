"""The cache-aside read path and the cache step of writes, with the breaker and the outbox.

Reads: one round trip to Redis (the entry and the environment's revision together); a fresh entry is
a HIT; a missing or soft-expired one is read from PostgreSQL and filled back (MISS) with a
version-guarded script; when the refresh fails the last-known-good copy is served (STALE); when
Redis fails or its breaker is open, PostgreSQL answers alone (BYPASS) and nothing waits on Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from flagservice import telemetry
from flagservice.breaker import CircuitBreaker
from flagservice.errors import CacheUnavailableError, FlagNotFoundError, StoreUnavailableError
from flagservice.flags.model import StoredFlag
from flagservice.ports import CacheOutcome, CacheRead, FlagCache, FlagRepository, Guarded, WriteResult

T = TypeVar("T")
STATS_FLUSH_SECONDS = 1.0
MAX_FLAGS = 10_000  # bulk evaluation covers every flag of an environment
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
        return result

    def lookup(self, key: str) -> Lookup:
        """The flag for `key`, or FlagNotFoundError / StoreUnavailableError (never a cache error)."""
        started = time.perf_counter()
        self._replay_if_due()
        read = self.cache_call(lambda cache: cache.read(key))
        flag, outcome = self._resolve(key, read)
        if self.cache is not None:
            self.cache.count(key, hit=outcome in (CacheOutcome.HIT, CacheOutcome.STALE))
        telemetry.record_lookup(key, outcome.value, (time.perf_counter() - started) * 1000)
        if flag is None:
            raise FlagNotFoundError("no such flag", key=key, outcome=outcome.value)
        return Lookup(flag, outcome)

    def _resolve(self, key: str, read: CacheRead | None) -> tuple[StoredFlag | None, CacheOutcome]:
        if read is None:
            return self.repository.get(key), CacheOutcome.BYPASS
        entry = read.entry
        if entry is not None and entry.fresh(int(time.time() * 1000)):
            return entry.flag, CacheOutcome.HIT
        try:
            flag = self.repository.get(key)
        except StoreUnavailableError:
            if entry is not None and entry.flag is not None:
                return entry.flag, CacheOutcome.STALE
            raise
        self.hooks.after_repository_read(key)
        self.fill(key, flag, read.revision)
        return flag, CacheOutcome.MISS

    def all_flags(self) -> tuple[list[StoredFlag], int, CacheOutcome]:
        """Every live flag and the revision they belong to, from the snapshot when it is current.

        The snapshot is valid only for the revision it was built at, so writers never touch it: a
        write moves the revision on and the next bulk read rebuilds it (one database read).
        """
        read = self.cache_call(lambda cache: cache.read_snapshot())
        if read is None:
            return self._listed(), self.repository.revision(), CacheOutcome.BYPASS
        snapshot, revision = read
        now_ms = int(time.time() * 1000)
        if snapshot is not None and snapshot.version == revision and snapshot.fresh(now_ms):
            return snapshot.flags, snapshot.version, CacheOutcome.HIT
        try:
            flags = self._listed()
        except StoreUnavailableError:
            if snapshot is None:
                raise
            return snapshot.flags, snapshot.version, CacheOutcome.STALE
        self.hooks.after_repository_read(SNAPSHOT)
        if revision is None:
            self.seed_revision()
            return flags, self.repository.revision(), CacheOutcome.MISS
        self.cache_call(lambda cache: cache.fill_snapshot(flags, observed_revision=revision))
        return flags, revision, CacheOutcome.MISS

    def _listed(self) -> list[StoredFlag]:
        return self.repository.list_flags(after=None, limit=MAX_FLAGS)

    def fill(self, key: str, flag: StoredFlag | None, observed_revision: int | None) -> None:
        """Store what PostgreSQL said, unless a write was applied since `observed_revision` was read."""
        version = flag.version if flag is not None else 0
        if observed_revision is None:
            self.seed_revision()
            return
        result = self.cache_call(lambda c: c.fill(key, flag, version=version, observed_revision=observed_revision))
        if result is Guarded.NO_REVISION:
            self.seed_revision()

    def seed_revision(self) -> None:
        """After a flush or restart the revision copy is gone: copy it back from PostgreSQL's sequence."""
        try:
            revision = self.repository.revision()
        except StoreUnavailableError:
            return
        self.cache_call(lambda cache: cache.seed_revision(revision))

    def apply_write(self, result: WriteResult) -> bool:
        """A committed write's cache step; True when Redis took it (the outbox row can go)."""
        self.hooks.before_cache_step(result.key)
        return self._apply(result.key, result.flag, result.version, result.revision)

    def _apply(self, key: str, flag: StoredFlag | None, version: int, revision: int) -> bool:
        outcome = self.cache_call(lambda c: c.apply_write(key, flag, version=version, revision=revision))
        if outcome is Guarded.NO_REVISION:
            self.seed_revision()
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

    def finish(self) -> None:
        """End of a request: batched stats go out at least once a second even without other round trips."""
        telemetry.record_count("CacheBreakerOpen", 0 if self.breaker.allow() else 1)
        if self.cache is not None and self.clock() - self._last_stats_flush >= STATS_FLUSH_SECONDS:
            self._last_stats_flush = self.clock()
            self.cache_call(lambda cache: cache.flush_stats())
