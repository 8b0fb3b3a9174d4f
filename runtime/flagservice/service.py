"""The flag service: reads through the cache-aside path, writes to the source of truth, history.

Depends only on the ports; the handler maps its domain errors to HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from flagservice.errors import FlagNotFoundError, InvalidFlagError, StoreUnavailableError, VersionConflictError
from flagservice.flags.model import FlagDefinition, StoredFlag, format_time
from flagservice.ports import CacheOutcome, FlagRepository, HistoryEntry, IfMatch, WriteAction, WriteResult
from flagservice.validation import parse_definition

logger = Logger(child=True)
REQUIRED_FIELDS = frozenset({"key", "enabled"})
PATCH_RETRIES = 3


@dataclass(frozen=True)
class Lookup:
    """A flag read and where it came from."""

    flag: StoredFlag
    outcome: CacheOutcome


@dataclass(frozen=True)
class Page:
    """One page of a list; `next` is the value to pass as `after`, None on the last page."""

    items: list[Any]
    next: Any
    outcome: CacheOutcome = CacheOutcome.BYPASS


class FlagService:
    """Cache-aside reads and transactional writes over a FlagRepository (Core I: no cache yet)."""

    def __init__(self, repository: FlagRepository) -> None:
        self._repository = repository
        self._started = datetime.now(UTC)

    def get_flag(self, key: str) -> Lookup:
        flag = self._repository.get(key)
        if flag is None:
            raise FlagNotFoundError("no such flag", key=key)
        return Lookup(flag, CacheOutcome.BYPASS)

    def list_flags(self, *, after: str | None, limit: int) -> Page:
        flags = self._repository.list_flags(after=after, limit=limit + 1)
        more = len(flags) > limit
        flags = flags[:limit]
        return Page(flags, flags[-1].key if more else None, CacheOutcome.BYPASS)

    def put_flag(self, definition: FlagDefinition, *, actor: str, if_match: IfMatch) -> WriteResult:
        """Create or replace a whole flag."""
        result = self._repository.save(definition, action=WriteAction.CREATE, actor=actor, if_match=if_match)
        return self._written(result, actor)

    def patch_flag(self, key: str, changes: dict[str, Any], *, actor: str, if_match: IfMatch) -> WriteResult:
        """Apply top-level field changes to the current definition.

        Without If-Match a concurrent writer between our read and our write is not the caller's
        conflict: the patch is re-applied to the newer version (a few times at most).
        """
        if changes.get("key", key) != key:
            raise InvalidFlagError("a PATCH cannot change the key", key=key)
        nulled = sorted(name for name in REQUIRED_FIELDS if name in changes and changes[name] is None)
        if nulled:
            raise InvalidFlagError(f"required field(s) cannot be null: {', '.join(nulled)}", key=key)
        for attempt in range(PATCH_RETRIES):
            current = self.get_current(key)
            merged = {**current.definition.to_dict(), **changes, "key": key}
            definition = parse_definition(merged)
            expected = current.version if if_match is None else if_match
            try:
                result = self._repository.save(definition, action=WriteAction.PATCH, actor=actor, if_match=expected)
            except VersionConflictError:
                if if_match is not None or attempt == PATCH_RETRIES - 1:
                    raise
                continue
            return self._written(result, actor)
        raise AssertionError("unreachable")

    def delete_flag(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult:
        return self._written(self._repository.delete(key, actor=actor, if_match=if_match), actor)

    def revert_flag(self, key: str, version: int, *, actor: str, if_match: IfMatch) -> WriteResult:
        """Store the definition of an earlier version as a new version."""
        self.get_current(key)
        entry = self._repository.history_entry(key, version)
        if entry is None or entry.after is None:
            raise InvalidFlagError(f"version {version} never existed or is a deletion", key=key)
        definition = parse_definition(entry.after)
        result = self._repository.save(definition, action=WriteAction.REVERT, actor=actor, if_match=if_match)
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
        cache = "unavailable"
        up = [database, cache].count("ok")
        status = "ok" if up == 2 else "degraded" if up == 1 else "unavailable"
        return {"status": status, "cache": cache, "database": database}

    def cache_stats(self) -> dict[str, Any]:
        """Hit and miss counts; without a cache nothing is counted yet."""
        return {"hits": 0, "misses": 0, "hitRate": 0.0, "since": format_time(self._started), "flags": []}

    def get_current(self, key: str) -> StoredFlag:
        """The flag as the source of truth has it now (writes never trust a cache)."""
        flag = self._repository.get(key)
        if flag is None:
            raise FlagNotFoundError("no such flag", key=key)
        return flag

    def _written(self, result: WriteResult, actor: str) -> WriteResult:
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
