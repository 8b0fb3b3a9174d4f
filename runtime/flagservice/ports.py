"""Ports: what the service needs from its stores, as Protocols. Adapters implement them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from flagservice.errors import FlagNotFoundError, VersionConflictError
from flagservice.flags.model import FlagDefinition, StoredFlag

IfMatch = int | Literal["*"] | None
"""Expected current version: a number, "*" (the flag must exist), or None (no precondition)."""


class WriteAction(StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    PATCH = "patch"
    DELETE = "delete"
    REVERT = "revert"


class CacheOutcome(StrEnum):
    """Where a read answer came from; the `X-Cache` header. Ordered from best to worst source."""

    HIT = "HIT"
    MISS = "MISS"
    BYPASS = "BYPASS"
    STALE = "STALE"

    @property
    def degraded(self) -> bool:
        return self in (CacheOutcome.BYPASS, CacheOutcome.STALE)

    @staticmethod
    def worst(outcomes: Iterable[CacheOutcome]) -> CacheOutcome:
        """An answer built from several flags reports its worst source."""
        order = list(CacheOutcome)
        return max(outcomes, key=order.index, default=CacheOutcome.HIT)


@dataclass(frozen=True)
class HistoryEntry:
    """One audit row: the write that produced `version`."""

    key: str
    version: int
    action: WriteAction
    actor: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class WriteResult:
    """What a committed write produced: the stored flag (None after a delete) and its cache step."""

    key: str
    version: int
    revision: int
    action: WriteAction
    flag: StoredFlag | None
    outbox_id: int


@dataclass(frozen=True)
class OutboxEntry:
    """A cache step still owed for a committed write."""

    id: int
    key: str
    version: int
    revision: int


MUST_EXIST = frozenset({WriteAction.REPLACE, WriteAction.PATCH, WriteAction.REVERT, WriteAction.DELETE})


def check_precondition(key: str, action: WriteAction, live_version: int | None, if_match: IfMatch) -> None:
    """Raise for a write whose preconditions fail: a missing flag first (404), then If-Match (412)."""
    if live_version is None and action in MUST_EXIST:
        raise FlagNotFoundError("no such flag", key=key)
    if if_match == "*" and live_version is None:
        raise VersionConflictError("If-Match: * but the flag does not exist", key=key)
    if isinstance(if_match, int) and if_match != live_version:
        raise VersionConflictError(f"If-Match {if_match} does not match version {live_version}", key=key)


@dataclass(frozen=True)
class CacheEntry:
    """A cached answer for one key: the flag, or None for "no such flag" (negative entry or tombstone)."""

    version: int
    flag: StoredFlag | None
    soft_expiry_ms: int

    def fresh(self, now_ms: int) -> bool:
        return now_ms < self.soft_expiry_ms


@dataclass(frozen=True)
class CacheSnapshot:
    """Every live flag of the environment as of revision `version` (for bulk evaluation)."""

    version: int
    flags: list[StoredFlag]
    soft_expiry_ms: int

    def fresh(self, now_ms: int) -> bool:
        return now_ms < self.soft_expiry_ms


@dataclass(frozen=True)
class CacheRead:
    """What one round trip to the cache saw: the entry and the environment's revision (None if unknown)."""

    entry: CacheEntry | None
    revision: int | None
    leased: bool = False  # this caller holds the refill lease for a missing or expired entry


class Guarded(StrEnum):
    """How a version-guarded cache write ended."""

    STORED = "stored"
    REFUSED = "refused"  # the cache holds something newer, or a write happened since the reader looked
    NO_REVISION = "no_revision"  # the revision copy is gone (flush, restart): seed it from PostgreSQL first


class FlagCache(Protocol):
    """The shared cache. Every method raises CacheUnavailableError when the cache fails or times out.

    Writes are version-guarded: a value never replaces a newer one, and a fill is refused when the
    environment's revision moved on since the reader looked (a write committed meanwhile).
    """

    def read(self, key: str, *, lease_ms: int = 0) -> CacheRead:
        """The entry and the revision; with `lease_ms`, a missing or expired entry's refill lease too."""
        ...

    def revision(self) -> int | None: ...

    def most_read(self, limit: int) -> list[str]:
        """The keys with the most hits across all containers (for warming a new container)."""
        ...

    def read_many(self, keys: list[str]) -> tuple[dict[str, CacheEntry], int | None]:
        """The entries present among `keys` and the revision, in one round trip (no leases)."""
        ...

    def read_snapshot(self) -> tuple[CacheSnapshot | None, int | None]:
        """The snapshot of all flags and the current revision, in one round trip."""
        ...

    def fill_snapshot(self, flags: list[StoredFlag], *, observed_revision: int) -> Guarded:
        """Store all flags as of `observed_revision` (refused if a write was applied since)."""
        ...

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded: ...

    def apply_write(self, key: str, flag: StoredFlag | None, *, version: int, revision: int) -> Guarded: ...

    def seed_revision(self, revision: int) -> None:
        """Raise the revision copy to at least `revision` (it never goes down)."""
        ...

    def count(self, key: str, *, hit: bool) -> None:
        """Count a lookup in memory; flush_stats sends it at the end of the request."""
        ...

    def flush_stats(self) -> None: ...

    def stats(self) -> tuple[dict[str, int], dict[str, int], str | None]:
        """Global per-flag hits and misses, and when counting started (RFC 3339)."""
        ...

    def ping(self) -> None: ...

    def pool_in_use(self) -> int:
        """Connections in use (a gauge for RedisPoolInUse); no I/O."""
        ...


class FlagRepository(Protocol):
    """The source of truth. Every write is one transaction: flag, audit row, outbox row, revision bump.

    Raises StoreUnavailableError when the database cannot be reached, FlagNotFoundError and
    VersionConflictError for failed preconditions.
    """

    def get(self, key: str) -> StoredFlag | None: ...

    def get_many(self, keys: list[str]) -> dict[str, StoredFlag]: ...

    def list_flags(self, *, after: str | None, limit: int) -> list[StoredFlag]: ...

    def save(self, definition: FlagDefinition, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        """Store a definition as a new version. CREATE stores it whether or not the flag exists
        (the result says CREATE or REPLACE); PATCH, REPLACE and REVERT need an existing flag."""
        ...

    def delete(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult: ...

    def history(self, key: str, *, before_version: int | None, limit: int) -> list[HistoryEntry]:
        """Newest first; raises FlagNotFoundError for a key that never existed."""
        ...

    def history_entry(self, key: str, version: int) -> HistoryEntry | None: ...

    def revision(self) -> int:
        """The environment's revision: bumped by every write, never reused."""
        ...

    def pending_outbox(self, *, limit: int) -> list[OutboxEntry]: ...

    def clear_outbox(self, ids: list[int]) -> None: ...

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the database answers."""
        ...
