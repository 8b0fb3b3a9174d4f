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
