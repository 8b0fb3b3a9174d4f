"""In-memory fakes of the ports, for unit tests. The contract suite keeps them honest."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from flagservice.errors import CacheUnavailableError, FlagNotFoundError, StoreUnavailableError
from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.ports import (
    CacheEntry,
    CacheRead,
    CacheSnapshot,
    Guarded,
    HistoryEntry,
    IfMatch,
    OutboxEntry,
    WriteAction,
    WriteResult,
    check_precondition,
)


class InMemoryFlagRepository:
    """The FlagRepository port in memory; `down = True` makes every call fail like a dead database."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, dict[str, Any] | None, datetime]] = {}
        self.audit: list[HistoryEntry] = []
        self.outbox: dict[int, OutboxEntry] = {}
        self._revision = 0
        self._outbox_ids = 0
        self.down = False
        self.reads = 0

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("the database is unavailable")

    def _stored(self, key: str) -> StoredFlag | None:
        version, definition, at = self.rows.get(key, (0, None, datetime.now(UTC)))
        if definition is None:
            return None
        return StoredFlag(definition=FlagDefinition.model_validate(definition), version=version, updated_at=at)

    def get(self, key: str) -> StoredFlag | None:
        self._check()
        self.reads += 1
        return self._stored(key)

    def get_many(self, keys: list[str]) -> dict[str, StoredFlag]:
        self._check()
        self.reads += 1
        found = {key: self._stored(key) for key in keys}
        return {key: flag for key, flag in found.items() if flag is not None}

    def list_flags(self, *, after: str | None, limit: int) -> list[StoredFlag]:
        self._check()
        keys = sorted(k for k, row in self.rows.items() if row[1] is not None and (after is None or k > after))
        return [flag for flag in map(self._stored, keys[:limit]) if flag is not None]

    def save(self, definition: FlagDefinition, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(definition.key, definition.to_dict(), action, actor, if_match)

    def delete(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(key, None, WriteAction.DELETE, actor, if_match)

    def _write(
        self, key: str, after: dict[str, Any] | None, action: WriteAction, actor: str, if_match: IfMatch
    ) -> WriteResult:
        self._check()
        version, before, _ = self.rows.get(key, (0, None, datetime.now(UTC)))
        check_precondition(key, action, version if before is not None else None, if_match)
        if action is WriteAction.CREATE and before is not None:
            action = WriteAction.REPLACE
        now = datetime.now(UTC)
        self.rows[key] = (version + 1, copy.deepcopy(after), now)
        self._revision += 1
        self._outbox_ids += 1
        self.audit.append(HistoryEntry(key, version + 1, action, actor, now, before, copy.deepcopy(after)))
        self.outbox[self._outbox_ids] = OutboxEntry(self._outbox_ids, key, version + 1, self._revision)
        return WriteResult(key, version + 1, self._revision, action, self._stored(key), self._outbox_ids)

    def history(self, key: str, *, before_version: int | None, limit: int) -> list[HistoryEntry]:
        self._check()
        entries = sorted((e for e in self.audit if e.key == key), key=lambda e: -e.version)
        if not entries:
            raise FlagNotFoundError("no such flag", key=key)
        return [e for e in entries if before_version is None or e.version < before_version][:limit]

    def history_entry(self, key: str, version: int) -> HistoryEntry | None:
        self._check()
        return next((e for e in self.audit if e.key == key and e.version == version), None)

    def revision(self) -> int:
        self._check()
        return self._revision

    def pending_outbox(self, *, limit: int) -> list[OutboxEntry]:
        self._check()
        return [self.outbox[i] for i in sorted(self.outbox)][:limit]

    def clear_outbox(self, ids: list[int]) -> None:
        self._check()
        for entry_id in ids:
            self.outbox.pop(entry_id, None)

    def ping(self) -> None:
        self._check()


class InMemoryFlagCache:
    """The FlagCache port in memory, with the same version guards as the Redis scripts.

    `down = True` makes every call fail like an unreachable Redis; `calls` counts round trips.
    """

    def __init__(self, *, soft_ttl: float = 300, negative_ttl: int = 30, clock: Any = None) -> None:
        import time

        self.entries: dict[str, CacheEntry] = {}
        self.revision_copy: int | None = None
        self.snapshot: CacheSnapshot | None = None
        self.leases: dict[str, float] = {}
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self._pending: list[tuple[str, bool]] = []
        self.since: str | None = None
        self.soft_ttl = soft_ttl
        self.negative_ttl = negative_ttl
        self.clock = clock or time.time
        self.down = False
        self.calls = 0
        self.attempts = 0

    def _trip(self) -> None:
        self.attempts += 1
        if self.down:
            raise CacheUnavailableError("the cache is unavailable")
        self.calls += 1

    def _flush_pending(self) -> None:
        for key, hit in self._pending:
            (self.hits if hit else self.misses)[key] += 1
            self.since = self.since or "2026-01-01T00:00:00.000Z"
        self._pending.clear()

    def read(self, key: str, *, lease_ms: int = 0) -> CacheRead:
        self._trip()
        entry = self.entries.get(key)
        leased = False
        expired = entry is None or not entry.fresh(int(self.clock() * 1000))
        if expired and lease_ms > 0 and self.leases.get(key, 0.0) <= self.clock():
            self.leases[key] = self.clock() + lease_ms / 1000
            leased = True
        return CacheRead(entry, self.revision_copy, leased)

    def revision(self) -> int | None:
        self._trip()
        return self.revision_copy

    def most_read(self, limit: int) -> list[str]:
        self._trip()
        return [key for key, _ in self.hits.most_common(limit)]

    def read_many(self, keys: list[str]) -> tuple[dict[str, CacheEntry], int | None]:
        self._trip()
        return {key: self.entries[key] for key in keys if key in self.entries}, self.revision_copy

    def read_snapshot(self) -> tuple[CacheSnapshot | None, int | None]:
        self._trip()
        return self.snapshot, self.revision_copy

    def fill_snapshot(self, flags: list[StoredFlag], *, observed_revision: int) -> Guarded:
        self._trip()
        if self.revision_copy is None:
            return Guarded.NO_REVISION
        newer = self.snapshot is not None and self.snapshot.version > observed_revision
        if self.revision_copy > observed_revision or newer:
            return Guarded.REFUSED
        self.snapshot = CacheSnapshot(observed_revision, list(flags), int((self.clock() + self.soft_ttl) * 1000))
        return Guarded.STORED

    def _entry(self, flag: StoredFlag | None, version: int) -> CacheEntry:
        ttl = self.soft_ttl if flag is not None else self.negative_ttl
        return CacheEntry(version, flag, int((self.clock() + ttl) * 1000))

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded:
        self._trip()
        self.leases.pop(key, None)
        if self.revision_copy is None:
            return Guarded.NO_REVISION
        cached = self.entries.get(key)
        if self.revision_copy > observed_revision or (cached is not None and cached.version > version):
            return Guarded.REFUSED
        self.entries[key] = self._entry(flag, version)
        return Guarded.STORED

    def apply_write(self, key: str, flag: StoredFlag | None, *, version: int, revision: int) -> Guarded:
        self._trip()
        if self.revision_copy is None:
            return Guarded.NO_REVISION
        cached = self.entries.get(key)
        if cached is None or cached.version < version:
            self.entries[key] = self._entry(flag, version)
        self.revision_copy = max(self.revision_copy, revision)
        return Guarded.STORED

    def seed_revision(self, revision: int) -> None:
        self._trip()
        self.revision_copy = max(self.revision_copy or 0, revision)

    def count(self, key: str, *, hit: bool) -> None:
        self._pending.append((key, hit))

    def flush_stats(self) -> None:
        """Like the real one: a send without waiting for a reply, so not a round trip (`calls`)."""
        if self._pending:
            self.attempts += 1
            if self.down:
                raise CacheUnavailableError("the cache is unavailable")
            self._flush_pending()

    def stats(self) -> tuple[dict[str, int], dict[str, int], str | None]:
        self._trip()
        self._flush_pending()
        return dict(self.hits), dict(self.misses), self.since

    def ping(self) -> None:
        self._trip()

    def pool_in_use(self) -> int:
        return 0

    def flush_all(self) -> None:
        """Like FLUSHALL behind the service's back."""
        self.entries.clear()
        self.snapshot = None
        self.revision_copy = None
