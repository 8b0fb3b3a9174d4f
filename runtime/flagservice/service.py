"""The flag service: reads through the cache-aside path, writes to the source of truth, history.

Depends only on the ports; the handler maps its domain errors to HTTP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flagservice import evaluations
from flagservice.cache_aside import UNAVAILABLE, CacheAside, Lookup
from flagservice.errors import InvalidFlagError, StoreUnavailableError
from flagservice.evaluations import BulkAnswer, FlagAnswer
from flagservice.flags.model import FlagDefinition, StoredFlag, format_time
from flagservice.ports import CacheOutcome, FlagCache, FlagRepository, HistoryEntry, IfMatch, WriteAction, WriteResult
from flagservice.push.publish import ChangePublisher, NoPublisher
from flagservice.sync import sync_inline
from flagservice.telemetry import logger
from flagservice.validation import parse_definition

REQUIRED_FIELDS = frozenset({"key", "enabled"})


@dataclass(frozen=True)
class Page:
    """One page of a list; `next` is the value to pass as `after`, None on the last page."""

    items: list[Any]
    next: Any
    outcome: CacheOutcome = CacheOutcome.BYPASS


class FlagService:
    """Cache-aside reads and transactional writes over a FlagRepository and an optional FlagCache."""

    def __init__(
        self,
        repository: FlagRepository,
        cache: FlagCache | None = None,
        *,
        reads: CacheAside | None = None,
        publisher: ChangePublisher | None = None,
    ):
        self._repository = repository
        self._publisher = publisher or NoPublisher()
        # Without a CacheAside of its own (tests, embedders), the sync runs inline when Redis is suspect.
        self.reads = reads or sync_inline(CacheAside(repository, cache), publisher=self._publisher)
        self._started = datetime.now(UTC)

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """One request's scope for the cache path (the handler's and warm()'s boundary): after a Redis
        failure the rest of the request skips Redis, and at its end the request's counts are sent."""
        self.reads.begin()
        try:
            yield
        finally:
            self.reads.finish()

    def warm(self) -> int:
        """Prefetch the most-read flags into this container's L1 (see CacheAside.warm)."""
        return self.reads.warm()

    def get_flag(self, key: str) -> Lookup:
        return self.reads.lookup(key)

    def evaluate(self, key: str, context: Mapping[str, Any]) -> tuple[FlagAnswer, CacheOutcome]:
        """One flag for one context (OFREP single evaluation)."""
        return evaluations.evaluate_one(self.reads, key, context)

    def evaluate_all(
        self, context: Mapping[str, Any], *, if_none_match: str | None, at_least: int | None = None
    ) -> BulkAnswer:
        """Every flag for one context (OFREP bulk evaluation), or "not modified"; `at_least`: a revision the
        answer must be at least as new as (an event's etag), when the cache knows it."""
        return evaluations.evaluate_all(self.reads, context, if_none_match, at_least)

    def change_revision(self) -> int:
        """The environment's change revision as Redis holds it: where an event stream's client starts (`since`).
        0 when Redis cannot say: too old a start only costs the client one catch-up re-fetch, never a change."""
        signal = self.reads.cache_call(lambda cache: cache.signal())
        return 0 if signal is UNAVAILABLE or signal.revision is None else signal.revision

    def list_flags(self, *, after: str | None, limit: int) -> Page:
        """A page straight from PostgreSQL; its flags are filled into the cache on the way (MISS)."""
        signal = self.reads.cache_call(lambda cache: cache.signal())
        flags = self._repository.list_flags(after=after, limit=limit + 1)
        more = len(flags) > limit
        flags = flags[:limit]
        if signal is UNAVAILABLE or signal.revision is None:
            return Page(flags, flags[-1].key if more else None, CacheOutcome.BYPASS)
        self.reads.fill_many(flags, signal.revision)
        return Page(flags, flags[-1].key if more else None, CacheOutcome.MISS)

    def put_flag(self, definition: FlagDefinition, *, actor: str, if_match: IfMatch) -> WriteResult:
        """Create or replace a whole flag."""
        result = self._repository.save(definition, action=WriteAction.CREATE, actor=actor, if_match=if_match)
        return self._written(result, actor)

    def patch_flag(self, key: str, changes: dict[str, Any], *, actor: str, if_match: IfMatch) -> WriteResult:
        """Apply top-level field changes to the current definition, under the flag's row lock: a
        concurrent write is waited for and the patch lands on top of it, never on a stale read."""
        if changes.get("key", key) != key:
            raise InvalidFlagError("a PATCH cannot change the key", key=key)
        nulled = sorted(name for name in REQUIRED_FIELDS if name in changes and changes[name] is None)
        if nulled:
            raise InvalidFlagError(f"required field(s) cannot be null: {', '.join(nulled)}", key=key)

        def patched(current: StoredFlag | None) -> FlagDefinition:
            assert current is not None  # PATCH needs an existing flag: the repository answered 404 first
            return parse_definition({**current.definition.to_dict(), **changes, "key": key})

        result = self._repository.update(key, patched, action=WriteAction.PATCH, actor=actor, if_match=if_match)
        return self._written(result, actor)

    def delete_flag(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult:
        return self._written(self._repository.delete(key, actor=actor, if_match=if_match), actor)

    def revert_flag(self, key: str, version: int, *, actor: str, if_match: IfMatch) -> WriteResult:
        """Store the definition of an earlier version as a new version."""
        entry = self._repository.history_entry(key, version)

        def reverted(current: StoredFlag | None) -> FlagDefinition:
            if entry is None or entry.after is None:
                raise InvalidFlagError(f"version {version} never existed or is a deletion", key=key)
            return parse_definition(entry.after)

        result = self._repository.update(key, reverted, action=WriteAction.REVERT, actor=actor, if_match=if_match)
        return self._written(result, actor)

    def history(self, key: str, *, after: int | None, limit: int) -> Page:
        entries: list[HistoryEntry] = self._repository.history(key, before_version=after, limit=limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        return Page(entries, entries[-1].version if more else None)

    def health(self) -> dict[str, str]:
        """Which stores answer; `status` is "unavailable" only when neither does (the route says 503)."""
        database = "ok"
        try:
            self._repository.ping()
        except StoreUnavailableError:
            database = "unavailable"
        cache = "ok" if self.reads.cache_call(_ping) is True else "unavailable"
        up = [database, cache].count("ok")
        status = "ok" if up == 2 else "degraded" if up == 1 else "unavailable"
        return {"status": status, "cache": cache, "database": database}

    def cache_stats(self) -> dict[str, Any]:
        """Global hit and miss counts per flag, kept in Redis (this container's pending counts included)."""
        counted = self.reads.cache_call(lambda cache: cache.stats())
        if counted is UNAVAILABLE:
            raise StoreUnavailableError("cache statistics live in the cache, which is unavailable")
        hits, misses, since = counted
        flags = [
            {
                "key": key,
                "hits": hits.get(key, 0),
                "misses": misses.get(key, 0),
                "hitRate": _rate(hits.get(key, 0), misses.get(key, 0)),
            }
            for key in sorted(set(hits) | set(misses))
        ]
        total_hits, total_misses = sum(hits.values()), sum(misses.values())
        return {
            "hits": total_hits,
            "misses": total_misses,
            "hitRate": _rate(total_hits, total_misses),
            "since": since or format_time(self._started),
            "flags": flags,
        }

    def _written(self, result: WriteResult, actor: str) -> WriteResult:
        """After commit: the cache step (the outbox row goes once Redis took it) and the audit log line."""
        if self.reads.apply_write(result):
            self._publisher.publish(result.revision)  # the replay publishes the writes Redis did not take
            # If this fails the row stays pending, and the background sync applies it again, harmlessly.
            with contextlib.suppress(StoreUnavailableError):
                self._repository.clear_outbox([result.outbox_id], best_effort=True)
        enabled = result.flag.definition.enabled if result.flag else None
        logger.info(
            "flag audit",
            flag=result.key,
            actor=actor,
            action=result.action.value,
            version=result.version,
            enabled=enabled,
            kill_switch=enabled is False,
        )
        return result


def _ping(cache: FlagCache) -> bool:
    cache.ping()
    return True


def _rate(hits: int, misses: int) -> float:
    return round(hits / (hits + misses), 4) if hits + misses else 0.0
