"""In-memory fakes of the ports, for unit tests. The contract suite keeps them honest."""

from __future__ import annotations

import copy
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from flagservice.errors import CacheUnavailableError, FlagNotFoundError, StoreUnavailableError
from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.ports import (
    CacheEntry,
    CacheRead,
    CacheSnapshot,
    Change,
    Guarded,
    HistoryEntry,
    IfMatch,
    OutboxEntry,
    Signal,
    SyncState,
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
        self.applied: dict[int, float] = {}  # outbox id -> when its cache step was applied (kept for repairs)
        self._revision = 0
        self._outbox_ids = 0
        self.down = False
        self.reads = 0
        self.revision_reads = 0  # list_if_changed calls...
        self.listings = 0  # ...and those that listed every flag
        self.probed_in_background = False

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

    def list_at_revision(self, *, limit: int) -> tuple[int, list[StoredFlag]]:
        return self._revision, self.list_flags(after=None, limit=limit)

    def list_if_changed(self, since: int | None, *, limit: int) -> tuple[int, list[StoredFlag] | None]:
        self._check()
        self.revision_reads += 1
        if since == self._revision:
            return since, None
        self.listings += 1
        return self.list_at_revision(limit=limit)

    def keys_at_revision(self, key: str) -> tuple[int, set[str], StoredFlag | None]:
        self._check()
        self.reads += 1
        return self._revision, {k for k, row in self.rows.items() if row[1] is not None}, self._stored(key)

    def save(self, definition: FlagDefinition, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(definition.key, lambda _: definition, action, actor, if_match)

    def update(self, key: str, change: Change, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(key, change, action, actor, if_match)

    def delete(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(key, lambda _: None, WriteAction.DELETE, actor, if_match)

    def _write(self, key: str, change: Change, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        self._check()
        version, before, _ = self.rows.get(key, (0, None, datetime.now(UTC)))
        check_precondition(key, action, version if before is not None else None, if_match)
        if action is WriteAction.CREATE and before is not None:
            action = WriteAction.REPLACE
        changed = change(self._stored(key))
        after = changed.to_dict() if changed is not None else None
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

    def sync_state(self, *, recent_seconds: float = 60.0) -> SyncState:
        self._check()
        oldest = min((entry.revision for entry in self.outbox.values()), default=None)
        since = datetime.now(UTC).timestamp() - recent_seconds
        recent = {key: row[0] for key, row in self.rows.items() if row[2].timestamp() > since}
        return SyncState(self._revision, oldest, len(self.outbox) - len(self.applied), recent)

    def pending_outbox(self, *, limit: int) -> list[OutboxEntry]:
        self._check()
        return [self.outbox[i] for i in sorted(self.outbox) if i not in self.applied][:limit]

    def outbox_since(self, revision: int, *, applied_within_seconds: float, limit: int) -> list[OutboxEntry]:
        self._check()
        since = time.time() - applied_within_seconds
        rows = [e for i, e in self.outbox.items() if e.revision > revision or self.applied.get(i, 0.0) > since]
        return sorted(rows, key=lambda e: e.revision)[:limit]

    def clear_outbox(self, ids: list[int], *, best_effort: bool = False) -> None:
        self._check()
        for entry_id in ids:
            if entry_id in self.outbox:
                self.applied.setdefault(entry_id, time.time())

    def prune_outbox(self, *, older_than_seconds: float, limit: int) -> int:
        self._check()
        old = [i for i, at in self.applied.items() if at < time.time() - older_than_seconds][:limit]
        for entry_id in old:
            self.outbox.pop(entry_id, None)
            self.applied.pop(entry_id, None)
        return len(old)

    def pending_count(self) -> int:
        return len(self.outbox) - len(self.applied)

    def ping(self) -> None:
        self._check()

    def available(self) -> bool:
        return not self.down


class InMemoryFlagCache:
    """The FlagCache port in memory, with the same version guards and key set as the Redis scripts.

    `down = True` makes every call fail like an unreachable Redis; `calls` counts round trips.
    """

    def __init__(self, *, soft_ttl: float = 300, negative_ttl: int = 30, clock: Any = None) -> None:
        self.entries: dict[str, CacheEntry] = {}
        self.revision_copy: int | None = None
        self.changes = 0
        self.snapshot: CacheSnapshot | None = None
        self.keyset: tuple[int, set[str], float] | None = None  # revision, keys, expiry
        self.written: dict[str, int] = {}  # key -> revision of its last applied write
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

    def _signal(self) -> Signal:
        return Signal(self.revision_copy, self.changes)

    def _lease(self, name: str, lease_ms: int) -> bool:
        if self.leases.get(name, 0.0) > self.clock():
            return False
        self.leases[name] = self.clock() + lease_ms / 1000
        return True

    def _current_keys(self) -> set[str] | None:
        if self.keyset is None or self.keyset[2] <= self.clock() or self.revision_copy is None:
            return None
        return self.keyset[1] if self.keyset[0] >= self.revision_copy else None

    def read(self, key: str, *, lease_ms: int = 0) -> CacheRead:
        self._trip()
        entry = self.entries.get(key)
        if entry is not None and entry.fresh(int(self.clock() * 1000)) or lease_ms <= 0:
            return CacheRead(entry, self._signal())
        if entry is not None:
            return CacheRead(entry, self._signal(), leased=self._lease(key, lease_ms))
        keys = self._current_keys()
        if keys is not None and key not in keys:
            return CacheRead(None, self._signal(), absent=True)
        if keys is not None:
            return CacheRead(None, self._signal(), leased=self._lease(key, lease_ms))
        return CacheRead(None, self._signal(), leased=self._lease("#keys", lease_ms), keys_needed=True)

    def signal(self) -> Signal:
        self._trip()
        return self._signal()

    def most_read(self, limit: int) -> list[str]:
        self._trip()
        return [key for key, _ in self.hits.most_common(limit)]

    def read_many(self, keys: list[str]) -> tuple[dict[str, CacheEntry], Signal]:
        self._trip()
        return {key: self.entries[key] for key in keys if key in self.entries}, self._signal()

    def read_snapshot(self, *, lease_ms: int = 0) -> tuple[CacheSnapshot | None, Signal, bool]:
        self._trip()
        snap = self.snapshot
        current = (
            snap is not None and snap.version >= (self.revision_copy or 0) and snap.fresh(int(self.clock() * 1000))
        )
        leased = not current and lease_ms > 0 and self._lease("*", lease_ms)
        return snap, self._signal(), leased

    def _guard(self, observed_revision: int, lease: str) -> Guarded | None:
        self.leases.pop(lease, None)
        if self.revision_copy is None:
            return Guarded.NO_REVISION
        return Guarded.REFUSED if self.revision_copy > observed_revision else None

    def fill_snapshot(self, flags: list[StoredFlag], *, revision: int, observed_revision: int) -> Guarded:
        self._trip()
        refused = self._guard(observed_revision, "*")
        if refused is not None:
            return refused
        if self.snapshot is not None and self.snapshot.version > revision:
            return Guarded.REFUSED
        self.snapshot = CacheSnapshot(revision, list(flags), int((self.clock() + self.soft_ttl) * 1000))
        return Guarded.STORED

    def fill_keys(self, keys: set[str], *, revision: int, observed_revision: int) -> Guarded:
        self._trip()
        self.leases.pop("#keys", None)
        if self.revision_copy is None:
            return Guarded.NO_REVISION
        if self.keyset is not None and self.keyset[0] > revision:
            return Guarded.REFUSED
        self.keyset = (revision, set(keys), self.clock() + self.negative_ttl)
        return Guarded.STORED

    def _entry(self, flag: StoredFlag | None, version: int) -> CacheEntry:
        ttl = self.soft_ttl if flag is not None else self.negative_ttl
        return CacheEntry(version, flag, int((self.clock() + ttl) * 1000))

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded:
        self._trip()
        return self._fill(key, flag, version, observed_revision)

    def _fill(self, key: str, flag: StoredFlag | None, version: int, observed_revision: int) -> Guarded:
        refused = self._guard(observed_revision, key)
        if refused is not None:
            return refused
        cached = self.entries.get(key)
        if cached is not None and cached.version > version:
            return Guarded.REFUSED
        self.entries[key] = self._entry(flag, version)
        return Guarded.STORED

    def fill_many(self, flags: list[StoredFlag], *, observed_revision: int) -> list[Guarded]:
        """One round trip, as the Redis script: `fill`'s guards for each flag."""
        if not flags:
            return []
        self._trip()
        return [self._fill(flag.key, flag, flag.version, observed_revision) for flag in flags]

    def apply_write(self, key: str, flag: StoredFlag | None, *, version: int, revision: int) -> Guarded:
        self._trip()
        if self.revision_copy is None:
            return Guarded.NO_REVISION
        cached = self.entries.get(key)
        newest = cached is None or cached.version < version
        if newest:
            self.entries[key] = self._entry(flag, version)
        if self.keyset is not None and self.keyset[0] >= self.revision_copy:
            keys = self.keyset[1]
            if newest:
                (keys.add if flag is not None else keys.discard)(key)
            self.keyset = (max(self.keyset[0], revision), keys, self.keyset[2])
        self.revision_copy = max(self.revision_copy, revision)
        self.changes += 1
        self.written[key] = max(self.written.get(key, 0), revision)
        return Guarded.STORED

    def seed_revision(self, revision: int) -> None:
        self._trip()
        if self.revision_copy is None or self.revision_copy < revision:
            self.revision_copy = revision
            self.changes += 1

    def written_since(self, revision: int) -> set[str]:
        self._trip()
        return {key for key, written in self.written.items() if written > revision}

    def drop_all(self) -> None:
        self._trip()
        self.entries.clear()
        self.snapshot = None
        self.keyset = None
        self.leases.clear()

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
        self.keyset = None
        self.leases.clear()
        self.revision_copy = None
        self.changes = 0
