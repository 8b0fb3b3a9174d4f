"""Ports: what the service needs from its stores, as Protocols. Adapters implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol

from flagservice.errors import FlagNotFoundError, VersionConflictError
from flagservice.flags.model import FlagDefinition, StoredFlag

IfMatch = frozenset[int] | Literal["*"] | None
"""Expected current version: any of a set of numbers (empty: nothing matches, e.g. a weak validator),
"*" (the flag must exist), or None (no precondition)."""

Change = Callable[[StoredFlag | None], FlagDefinition | None]
"""A write as a function of the flag's current state, applied under the row lock (None deletes)."""


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
    if isinstance(if_match, frozenset) and live_version not in if_match:
        raise VersionConflictError(f"If-Match does not match version {live_version}", key=key)


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
class Signal:
    """The environment's change signal as Redis holds it, read with every cache read.

    `revision` is the highest committed revision whose cache step Redis took (None: Redis lost it, e.g.
    flushed); `changes` moves with every applied cache step, in whatever order they land, so an in-process
    copy notices a write applied after a newer one. Both may go back after a failover: any difference
    invalidates what a container holds.
    """

    revision: int | None
    changes: int = 0


@dataclass(frozen=True)
class CacheRead:
    """What one round trip to the cache saw: the entry and the signal.

    `leased`: this caller holds the refill lease (of the entry, or of the key set when `keys_needed`).
    `absent`: the key set, current at this revision, says there is no such flag.
    `keys_needed`: the entry is missing and no current key set can tell whether the flag exists.
    """

    entry: CacheEntry | None
    signal: Signal
    leased: bool = False
    absent: bool = False
    keys_needed: bool = False

    @property
    def revision(self) -> int | None:
        return self.signal.revision


@dataclass(frozen=True)
class SyncState:
    """What the database says, for the background comparison with Redis."""

    revision: int  # committed revision
    oldest_kept: int | None  # the oldest outbox row's revision (rows are kept for repairs)
    pending: int  # cache steps not applied yet
    recent: dict[str, int] = field(default_factory=dict)  # key -> version of flags written lately


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
        """The entry and the signal; with `lease_ms`, a missing or expired entry's refill lease too, and
        for a missing entry the key set's verdict (absent) or its rebuild lease."""
        ...

    def signal(self) -> Signal: ...

    def most_read(self, limit: int) -> list[str]:
        """The keys with the most hits across all containers (for warming a new container)."""
        ...

    def read_many(self, keys: list[str]) -> tuple[dict[str, CacheEntry], Signal]:
        """The entries present among `keys` and the signal, in one round trip (no leases)."""
        ...

    def read_snapshot(self, *, lease_ms: int = 0) -> tuple[CacheSnapshot | None, Signal, bool]:
        """The snapshot of all flags and the signal; with `lease_ms`, the rebuild lease when the snapshot
        is missing, expired or older than the revision (third item: this caller holds it)."""
        ...

    def fill_snapshot(self, flags: list[StoredFlag], *, revision: int, observed_revision: int) -> Guarded:
        """Store all flags as of committed `revision` (refused if a write was applied since the reader
        saw `observed_revision`, or a newer snapshot is there)."""
        ...

    def fill_keys(self, keys: set[str], *, revision: int, observed_revision: int) -> Guarded:
        """Store the set of existing keys as of committed `revision` (never over a newer one); while its
        revision is at least Redis's it answers "no such flag" (for `NEGATIVE_TTL_SECONDS`), and writes
        keep it current meanwhile."""
        ...

    def written_since(self, revision: int) -> set[str]:
        """The keys written (cache steps applied) with a revision above `revision`, among the last 1,000."""
        ...

    def drop_all(self) -> None:
        """Forget every entry, snapshot and key set of the environment (a Redis that lost state)."""
        ...

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded: ...

    def fill_many(self, flags: list[StoredFlag], *, observed_revision: int) -> list[Guarded]:
        """`fill` of every flag (at its own version) in one round trip, with the same guards; one answer per flag."""
        ...

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

    def update(self, key: str, change: Change, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        """Store `change(current)` as a new version, computed under the row lock (never from a stale read)."""
        ...

    def list_at_revision(self, *, limit: int) -> tuple[int, list[StoredFlag]]:
        """Every live flag and the committed revision it is exactly the state of."""
        ...

    def list_if_changed(self, since: int | None, *, limit: int) -> tuple[int, list[StoredFlag] | None]:
        """As list_at_revision, unless the committed revision is still `since`: then `since` and None, at
        the cost of reading the revision only."""
        ...

    def keys_at_revision(self, key: str) -> tuple[int, set[str], StoredFlag | None]:
        """Every live flag's key and the committed revision they are the state of, with the flag `key`
        itself (one read answers both the key set and the lookup that needed it)."""
        ...

    def delete(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult: ...

    def history(self, key: str, *, before_version: int | None, limit: int) -> list[HistoryEntry]:
        """Newest first; raises FlagNotFoundError for a key that never existed."""
        ...

    def history_entry(self, key: str, version: int) -> HistoryEntry | None: ...

    def revision(self) -> int:
        """The environment's revision: bumped by every write, never reused."""
        ...

    def sync_state(self, *, recent_seconds: float = 60.0) -> SyncState:
        """Also a probe: it is asked even while the breaker is open (the background sync probes for reads)."""
        ...

    def pending_outbox(self, *, limit: int) -> list[OutboxEntry]: ...

    def outbox_since(self, revision: int, *, applied_within_seconds: float, limit: int) -> list[OutboxEntry]: ...

    def clear_outbox(self, ids: list[int], *, best_effort: bool = False) -> None:
        """Mark rows applied (kept a while for repairs); `best_effort`: do not wait long."""
        ...

    def prune_outbox(self, *, older_than_seconds: float, limit: int) -> int: ...

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the database answers."""
        ...

    probed_in_background: bool
    """Set when a background sync probes the database after a failure, so requests never do."""

    def available(self) -> bool:
        """False while the database's breaker is open (no I/O)."""
        ...
