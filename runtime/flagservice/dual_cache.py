"""Dual-write for a blue/green cache move: every cache step goes to two caches, reads come from one.

`DualWriteCache` composes two FlagCache adapters (docs/operations.md, "Moving to a new cache"): the
*active* one answers every read and its results are what the read path and the outbox rely on, exactly
as with one cache; the *inactive* one receives every write step too (applies, fills, key sets,
snapshots, stats counts), best effort. A failure of the inactive cache never reaches a caller: it is
logged, counted against its own breaker (open after a few consecutive failures: then no request waits
on it at all, and one probe goes through after the cooldown) and its missed writes are remembered for
the inactive cache's own repair pass (cache_move.InactiveCacheSync). Its waits are bounded by its
client's timeouts, like the active one's.

Revision moves (`seed_revision`) go to the active cache only: seeding the inactive one from a database
read would hide the writes it missed from its repair pass (which compares its revision with
PostgreSQL's and seeds it after replaying). `drop_all` goes to both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from flagservice.breaker import CircuitBreaker
from flagservice.errors import CacheUnavailableError
from flagservice.flags.model import StoredFlag
from flagservice.ports import CacheEntry, CacheRead, CacheSnapshot, FlagCache, Guarded, Signal
from flagservice.telemetry import logger

T = TypeVar("T")
INACTIVE_FAILURES_TO_OPEN = 2  # the inactive cache is never worth more than two bounded waits in a row
INACTIVE_COOLDOWN = 2.0


class DualWriteCache:
    """A FlagCache that reads from `active` and writes to `active` and `inactive`.

    `missed_after`: the lowest revision below every write step the inactive cache may have missed (None:
    none missed since its last repair); the repair pass replays the outbox from there.
    """

    def __init__(self, active: FlagCache, inactive: FlagCache, *, breaker: CircuitBreaker | None = None) -> None:
        self.active = active
        self.inactive = inactive
        self.inactive_breaker = breaker or CircuitBreaker(
            threshold=INACTIVE_FAILURES_TO_OPEN, cooldown=INACTIVE_COOLDOWN
        )
        self.missed_after: int | None = None
        self._lock = threading.Lock()  # the request thread and the repair thread both touch missed_after

    # -- the inactive side: best effort, bounded, never raising ------------------------------------------

    def _mirror(self, call: Callable[[FlagCache], T], *, proves_alive: bool = True) -> T | None:
        """Run `call` on the inactive cache unless its breaker is open; None when it failed or was skipped.

        A call that does not wait for an answer (`proves_alive=False`: the stats send) never closes the breaker.
        """
        if not self.inactive_breaker.allow():
            return None
        try:
            result = call(self.inactive)
        except CacheUnavailableError as exc:
            self.inactive_breaker.record_failure()
            logger.warning("inactive cache unavailable", error=str(exc)[:200])
            return None
        if proves_alive:
            self.inactive_breaker.record_success()
        return result

    def missed(self, revision: int) -> None:
        """Remember that the inactive cache may lack the write of `revision`."""
        with self._lock:
            below = revision - 1
            self.missed_after = below if self.missed_after is None else min(self.missed_after, below)

    def take_missed(self) -> int | None:
        """The missed point, cleared; a repair that fails gives it back with `missed`."""
        with self._lock:
            taken, self.missed_after = self.missed_after, None
            return taken

    # -- reads: the active cache only -----------------------------------------------------------------

    def read(self, key: str, *, lease_ms: int = 0) -> CacheRead:
        return self.active.read(key, lease_ms=lease_ms)

    def signal(self) -> Signal:
        return self.active.signal()

    def most_read(self, limit: int) -> list[str]:
        return self.active.most_read(limit)

    def read_many(self, keys: list[str]) -> tuple[dict[str, CacheEntry], Signal]:
        return self.active.read_many(keys)

    def read_snapshot(self, *, lease_ms: int = 0) -> tuple[CacheSnapshot | None, Signal, bool]:
        return self.active.read_snapshot(lease_ms=lease_ms)

    def written_since(self, revision: int) -> set[str]:
        return self.active.written_since(revision)

    def stats(self) -> tuple[dict[str, int], dict[str, int], str | None]:
        return self.active.stats()

    def ping(self) -> None:
        self.active.ping()

    def pool_in_use(self) -> int:
        return self.active.pool_in_use()

    # -- writes: both caches, the active one's answer -------------------------------------------------

    def apply_write(self, key: str, flag: StoredFlag | None, *, version: int, revision: int) -> Guarded:
        """The active cache's step first (its error, if any, is raised after the inactive one was tried:
        the write's outbox row then stays pending for the active cache, and the inactive one has it)."""
        try:
            outcome = self.active.apply_write(key, flag, version=version, revision=revision)
        except CacheUnavailableError:
            self._apply_inactive(key, flag, version, revision)
            raise
        self._apply_inactive(key, flag, version, revision)
        return outcome

    def _apply_inactive(self, key: str, flag: StoredFlag | None, version: int, revision: int) -> None:
        outcome = self._mirror(lambda cache: cache.apply_write(key, flag, version=version, revision=revision))
        if outcome is not Guarded.STORED:  # failed, skipped, or no revision there yet: the repair replays it
            self.missed(revision)

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded:
        outcome = self.active.fill(key, flag, version=version, observed_revision=observed_revision)
        self._mirror(lambda cache: cache.fill(key, flag, version=version, observed_revision=observed_revision))
        return outcome

    def fill_many(self, flags: list[StoredFlag], *, observed_revision: int) -> list[Guarded]:
        outcome = self.active.fill_many(flags, observed_revision=observed_revision)
        self._mirror(lambda cache: cache.fill_many(flags, observed_revision=observed_revision))
        return outcome

    def fill_keys(self, keys: set[str], *, revision: int, observed_revision: int) -> Guarded:
        outcome = self.active.fill_keys(keys, revision=revision, observed_revision=observed_revision)
        self._mirror(lambda cache: cache.fill_keys(keys, revision=revision, observed_revision=observed_revision))
        return outcome

    def fill_snapshot(self, flags: list[StoredFlag], *, revision: int, observed_revision: int) -> Guarded:
        outcome = self.active.fill_snapshot(flags, revision=revision, observed_revision=observed_revision)
        self._mirror(lambda cache: cache.fill_snapshot(flags, revision=revision, observed_revision=observed_revision))
        return outcome

    def seed_revision(self, revision: int) -> None:
        self.active.seed_revision(revision)

    def drop_all(self) -> None:
        self.active.drop_all()
        self._mirror(lambda cache: cache.drop_all())

    def count(self, key: str, *, hit: bool) -> None:
        self.active.count(key, hit=hit)
        self.inactive.count(key, hit=hit)  # in memory only: sent by flush_stats

    def flush_stats(self) -> None:
        self.active.flush_stats()
        self._mirror(lambda cache: cache.flush_stats(), proves_alive=False)
