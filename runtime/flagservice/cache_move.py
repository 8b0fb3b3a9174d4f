"""The two halves of a cache move that are not the dual-write itself: repairing the inactive cache, and warming it.

`InactiveCacheSync` is the background sync (sync.py) pointed at the inactive cache of a DualWriteCache:
each pass compares its revision with PostgreSQL's, replays what it lacks (outbox rows newer than its
revision, recent writes it holds older versions of) and seeds its revision, like the active cache's
sync, but it never marks outbox rows applied (they belong to the active cache) and it also replays the
writes the dual-write saw fail on it (`DualWriteCache.missed_after`), which its revision alone may hide
(a later write that did land raised it).

`warm_cache` fills a cache with every flag at the current revision, in small chunks, each guarded like
an ordinary refill (its revision observed before its database read), so a write landing meanwhile is
never overwritten by an older fill: the refused keys are tried again with a fresh read. It then checks
what it filled (every flag present at a version at least PostgreSQL's) and reports the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flagservice.cache_aside import MAX_FLAGS, CacheAside
from flagservice.dual_cache import DualWriteCache
from flagservice.errors import CacheUnavailableError, StoreUnavailableError
from flagservice.ports import FlagCache, FlagRepository, Guarded
from flagservice.sync import REPLAY_LIMIT, CacheSync
from flagservice.telemetry import logger

WARM_CHUNK = 50  # flags filled per observed revision: a write landing meanwhile refuses at most this many
WARM_ROUNDS = 5  # refused flags are tried again this many times
CHECK_CHUNK = 500


@dataclass
class InactiveCacheSync(CacheSync):
    """The background sync of the inactive cache of `dual` (see the module docstring)."""

    dual: DualWriteCache | None = None
    owns_outbox: bool = False

    def run_once(self) -> bool:
        return super().run_once() and self._replay_missed()

    def _replay_missed(self) -> bool:
        dual = self.dual
        after = dual.take_missed() if dual is not None else None
        if dual is None or after is None:
            return True
        try:
            rows = self.repository.outbox_since(after, applied_within_seconds=0.0, limit=REPLAY_LIMIT)
            if len(rows) >= REPLAY_LIMIT:
                self.cache.drop_all()  # the next pass seeds it; misses refill it
                return True
            current = self.repository.get_many(sorted({row.key for row in rows}))
            for row in rows:
                flag = current.get(row.key)
                version = flag.version if flag is not None else row.version
                self.cache.apply_write(row.key, flag, version=version, revision=row.revision)
        except (StoreUnavailableError, CacheUnavailableError) as exc:
            dual.missed(after + 1)
            logger.debug("inactive cache repair skipped", error=str(exc)[:200])
            return False
        if rows:
            logger.info("inactive cache: missed writes replayed", rows=len(rows))
        return True


def inactive_sync(repository: FlagRepository, dual: DualWriteCache) -> InactiveCacheSync:
    """The repair pass of `dual`'s inactive cache, with the inactive cache's own breaker and trust state."""
    shadow = CacheAside(repository, dual.inactive, breaker=dual.inactive_breaker)
    return InactiveCacheSync(repository, dual.inactive, shadow, dual=dual)


@dataclass
class WarmReport:
    """What a warm step did: flags listed at `revision`, stored, already held at PostgreSQL's version, and
    still behind after the check."""

    revision: int
    flags: int
    stored: int = 0
    present: int = 0
    rounds: int = 0
    behind: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, object]:
        return {
            "revision": self.revision,
            "flags": self.flags,
            "stored": self.stored,
            "present": self.present,
            "rounds": self.rounds,
            "behind": len(self.behind),
            "behindKeys": self.behind[:20],
        }


def warm_cache(repository: FlagRepository, cache: FlagCache) -> WarmReport:
    """Fill `cache` with every flag at the current revision (raises CacheUnavailableError or StoreUnavailableError)."""
    observed = cache.signal().revision
    revision, flags = repository.list_at_revision(limit=MAX_FLAGS)
    if observed is None:  # empty (a new cache): seeded from this read, as a refill of a flushed cache is
        cache.seed_revision(revision)
    report = WarmReport(revision=revision, flags=len(flags))
    pending = sorted(flag.key for flag in flags)
    while pending and report.rounds < WARM_ROUNDS:
        report.rounds += 1
        pending = [key for start in range(0, len(pending), WARM_CHUNK)
                   for key in _fill_chunk(repository, cache, pending[start:start + WARM_CHUNK], report)]  # fmt: skip
    _fill_sets(repository, cache)
    report.behind = _behind(cache, {flag.key: flag.version for flag in flags})
    logger.info("cache warmed", revision=revision, flags=len(flags), stored=report.stored, present=report.present,
                behind=len(report.behind))  # fmt: skip
    return report


def _fill_chunk(repository: FlagRepository, cache: FlagCache, keys: list[str], report: WarmReport) -> list[str]:
    """Fill `keys` with one database read, guarded by the revision observed before it; the refused keys.

    Flags the cache already holds at PostgreSQL's version are left alone (one MGET): a warm step cut short
    (the function's timeout, on a large environment) continues where it stopped when run again."""
    observed = cache.signal().revision or 0
    current = repository.get_many(keys)
    held, _ = cache.read_many(keys)
    refused = []
    for key in keys:
        flag = current.get(key)
        if flag is None:  # deleted meanwhile: its delete step reached this cache like any write
            continue
        if key in held and held[key].version >= flag.version:
            report.present += 1
            continue
        outcome = cache.fill(key, flag, version=flag.version, observed_revision=observed)
        if outcome is Guarded.STORED:
            report.stored += 1
        else:
            refused.append(key)
    return refused


def _fill_sets(repository: FlagRepository, cache: FlagCache) -> None:
    """The key set and the bulk snapshot, from one consistent read (refused if a write overtook it)."""
    observed = cache.signal().revision or 0
    revision, flags = repository.list_at_revision(limit=MAX_FLAGS)
    cache.fill_keys({flag.key for flag in flags}, revision=revision, observed_revision=observed)
    cache.fill_snapshot(flags, revision=revision, observed_revision=observed)


def _behind(cache: FlagCache, versions: dict[str, int]) -> list[str]:
    """Flags the cache lacks, or holds at a version older than the one listed (newer is fine)."""
    keys = sorted(versions)
    behind: list[str] = []
    for start in range(0, len(keys), CHECK_CHUNK):
        chunk = keys[start : start + CHECK_CHUNK]
        entries, _ = cache.read_many(chunk)
        behind += [key for key in chunk if key not in entries or entries[key].version < versions[key]]
    return behind


def warm_target(cache: FlagCache | None) -> FlagCache | None:
    """The cache a warm step fills: the inactive one while dual-writing (the one reads move to), else the one."""
    return cache.inactive if isinstance(cache, DualWriteCache) else cache
