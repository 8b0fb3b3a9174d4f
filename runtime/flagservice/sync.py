"""The background sync: keeps Redis honest without putting PostgreSQL on any read's path.

Every second (and at once when the read path suspects Redis), a thread of each container compares
Redis's revision with PostgreSQL's committed one and repairs the difference:
- cache steps still owed (a write whose own cache step failed) are replayed from the outbox;
- a Redis behind PostgreSQL (a failover to a replica that missed writes, a restore from an old
  snapshot, a flush) gets every write it may lack replayed: the outbox rows newer than its revision
  and, when it lost state, those applied in the last RECENT_SECONDS too (a write applied out of revision
  order); if the outbox no longer reaches back that far, every entry of the environment is dropped;
- then the revision is raised to PostgreSQL's, and the read path trusts Redis again.
Every call is bounded by the stores' own deadlines; a failed pass changes nothing and the next one
tries again. Nothing here touches Powertools' Metrics (they belong to the request thread).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from flagservice.cache_aside import CacheAside
from flagservice.errors import CacheUnavailableError, StoreUnavailableError
from flagservice.ports import FlagCache, FlagRepository, OutboxEntry, SyncState
from flagservice.push.publish import ChangePublisher, NoPublisher
from flagservice.telemetry import logger

INTERVAL = 1.0
RECENT_SECONDS = 60.0  # flags written this recently are checked against Redis on every pass
KEEP_SECONDS = 3600.0  # applied outbox rows are kept this long for repairs
PRUNE_EVERY = 60  # passes between two prunes of the outbox
REPLAY_LIMIT = 1000  # more rows than this to replay: dropping every entry is cheaper


@dataclass
class CacheSync:
    repository: FlagRepository
    cache: FlagCache
    reads: CacheAside
    passes: int = 0
    # False for a cache that is not the one the outbox tracks (the inactive cache of a move: dual_cache.py):
    # its replays must never mark rows applied that the active cache may still owe.
    owns_outbox: bool = True
    publisher: ChangePublisher = field(default_factory=NoPublisher)

    def run_once(self) -> bool:
        """One comparison and repair; True when Redis was found consistent with PostgreSQL (or made so)."""
        self.passes += 1
        self.publisher.flush()  # a change message that failed to go, sent again (publish.py)
        if not self.reads.breaker.allow():
            return False  # Redis is down for this container: nothing to compare, and nothing waits on it
        try:
            state = self.repository.sync_state(recent_seconds=RECENT_SECONDS)
            self.reads.outbox_pending = state.pending
            self._repair(state)
            if self.owns_outbox and self.passes % PRUNE_EVERY == 0:
                self.repository.prune_outbox(older_than_seconds=KEEP_SECONDS, limit=1000)
        except StoreUnavailableError as exc:
            logger.debug("background sync skipped: database", error=str(exc)[:200])
            return False
        except CacheUnavailableError as exc:
            logger.debug("background sync skipped: cache", error=str(exc)[:200])
            return False
        return True

    def _repair(self, state: SyncState) -> None:
        """Compare, replay what Redis lacks and raise its revision; a Redis that answers reads but refuses
        the repair (a read-only replica behind the endpoint, out of memory, paused writes) is not trusted."""
        cached = self.cache.signal().revision
        lost = cached is not None and cached < self.reads.high_water
        try:
            self._apply_repairs(state, cached, lost)
        except CacheUnavailableError:
            self.reads.distrust()
            raise
        self.reads.synced(state.revision)

    def _apply_repairs(self, state: SyncState, cached: int | None, lost: bool) -> None:
        before = cached
        if cached is None:  # flushed or restarted empty: nothing old is left, fills come from PostgreSQL
            self.cache.seed_revision(state.revision)
            cached = state.revision
        elif lost and state.oldest_kept is not None and cached + 1 < state.oldest_kept:
            logger.warning("cache lost more than the outbox keeps: dropping every entry", cache=cached)
            self.cache.drop_all()
            self.cache.seed_revision(state.revision)
            cached, lost = state.revision, False
        rows = self._owed(state, cached, lost)
        if len(rows) >= REPLAY_LIMIT:
            logger.warning("cache lacks more writes than a replay carries: dropping every entry", rows=len(rows))
            self.cache.drop_all()
        elif rows:
            self._replay(rows)
        self._replay_keys(self._outdated(state))
        self.cache.seed_revision(state.revision)
        # Writes whose own cache step failed were never announced; nor was a revision Redis lacked (a read may
        # have seeded it meanwhile): one message with the newest revision covers them all.
        if rows or before is None or before < state.revision:
            self.publisher.publish(state.revision)

    def _owed(self, state: SyncState, cached: int, lost: bool) -> list[OutboxEntry]:
        rows: dict[int, OutboxEntry] = {}
        if state.pending:
            rows.update((row.id, row) for row in self.repository.pending_outbox(limit=REPLAY_LIMIT))
        if cached < state.revision or lost:
            recent = RECENT_SECONDS if lost else 0.0
            since = self.repository.outbox_since(cached, applied_within_seconds=recent, limit=REPLAY_LIMIT)
            rows.update((row.id, row) for row in since)
        return sorted(rows.values(), key=lambda row: row.revision)

    def _outdated(self, state: SyncState) -> list[str]:
        """Flags written lately whose Redis entry is older than PostgreSQL's version: a write Redis lost
        without any revision showing it (a restore or failover between two cache steps applied out of
        order). One MGET of a handful of keys per pass."""
        if not state.recent:
            return []
        entries, _ = self.cache.read_many(sorted(state.recent))
        return [key for key, entry in entries.items() if entry.version < state.recent[key]]

    def _replay_keys(self, keys: list[str]) -> None:
        if not keys:
            return
        logger.warning("cache held older versions of flags written lately: repairing", flags=len(keys))
        current = self.repository.get_many(keys)
        # Redis's revision now, after this pass's replays (not the one read before them): it scores the key in
        # the written set that STALE overlays read, and never claims a key set newer than Redis holds.
        revision = self.cache.signal().revision or 0
        for key in keys:
            flag = current.get(key)
            if flag is not None:
                self.cache.apply_write(key, flag, version=flag.version, revision=revision)

    def _replay(self, rows: list[OutboxEntry]) -> None:
        """Apply each row with its flag's current state (version-guarded, so replaying is harmless)."""
        current = self.repository.get_many(sorted({row.key for row in rows}))
        for row in rows:
            flag = current.get(row.key)
            version = flag.version if flag is not None else row.version
            self.cache.apply_write(row.key, flag, version=version, revision=row.revision)
        if self.owns_outbox:
            self.repository.clear_outbox([row.id for row in rows])
        logger.info("outbox replayed", rows=len(rows), owns_outbox=self.owns_outbox)


def sync_inline(
    reads: CacheAside, *, interval: float = 2 * INTERVAL, publisher: ChangePublisher | None = None
) -> CacheAside:
    """Run the sync in the calling thread: when the read path suspects Redis, and at most every `interval`
    on a read (tests and embedders; deployed and local servers run a SyncThread instead, off the read path)."""
    if reads.cache is None:
        return reads
    sync = CacheSync(reads.repository, reads.cache, reads, publisher=publisher or NoPublisher())
    last = [time.monotonic()]

    def tick() -> None:
        if time.monotonic() - last[0] >= interval:
            last[0] = time.monotonic()
            sync.run_once()

    reads.on_suspect, reads.on_tick = sync.run_once, tick
    return reads


class SyncThread:
    """Runs a CacheSync every INTERVAL seconds in a daemon thread of this process, or at once when woken."""

    def __init__(self, sync: CacheSync, *, interval: float = INTERVAL) -> None:
        self.sync = sync
        sync.repository.probed_in_background = True  # requests never probe a database that failed
        self._interval = interval
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._pid: int | None = None

    def wake(self) -> None:
        self.ensure_started()
        self._wake.set()

    def ensure_started(self) -> None:
        """Start the thread in this process (a forked worker does not inherit its parent's threads)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="cache-sync", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self.sync.run_once()
            except Exception:  # noqa: BLE001 - the thread must outlive any surprise; the next pass retries
                logger.exception("background sync failed")
