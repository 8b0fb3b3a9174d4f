"""The FlagRepository on PostgreSQL (psycopg 3 and psycopg_pool): the source of truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import dict_row
from psycopg.types.json import Json

from flagservice.adapters.pg_deadline import Deadline, enforced
from flagservice.breaker import CircuitBreaker
from flagservice.errors import FlagNotFoundError, StoreUnavailableError
from flagservice.flags.model import TRUSTED, FlagDefinition, StoredFlag
from flagservice.ports import (
    Change,
    HistoryEntry,
    IfMatch,
    OutboxEntry,
    SyncState,
    WriteAction,
    WriteResult,
    check_precondition,
)

T = TypeVar("T")
Row = dict[str, Any]


def _stored(row: Row) -> StoredFlag:
    definition = FlagDefinition.model_validate(row["definition"], context=TRUSTED)
    return StoredFlag(definition=definition, version=row["version"], updated_at=row["updated_at"])


def _listed(rows: list[Row]) -> tuple[int, list[StoredFlag]]:
    """The rows of LIST_AT_REVISION: the revision (on every row, one row with no flag when there is none), the flags."""
    return int(rows[0]["revision"]), [_stored(row) for row in rows if row["definition"] is not None]


def _revision(row: Row | None) -> int:
    assert row is not None  # flag_revision_counter has exactly one row (002_revision_at_commit.sql)
    return int(row["revision"])


def _history(row: Row) -> HistoryEntry:
    return HistoryEntry(
        key=row["key"],
        version=row["version"],
        action=WriteAction(row["action"]),
        actor=row["actor"],
        at=row["at"],
        before=row["before"],
        after=row["after"],
    )


READ_SECONDS = 1.0  # a read, the background sync and /health never wait on the database longer
POOL_WAIT = 1.0  # a connection is made in milliseconds: a longer wait means the database refuses or hangs
PING_SECONDS = 0.25  # /health: a database that cannot say SELECT 1 this fast is reported unavailable
WRITE_SECONDS = 2.5  # a write: a 1.5 s commit, or a 1 s wait behind another write's commit, still succeeds
COMMIT_MARGIN = 0.3  # the database refuses a write's COMMIT this long before the service stops sending it...
COMMIT_GRACE = 0.4  # ...and the service waits this long past the deadline for a COMMIT it sent in time:
# a COMMIT the database accepted (before its own deadline) is answered before the service gives up,
# for any network delay under (COMMIT_MARGIN + COMMIT_GRACE) / 2 each way: a 503 is never a commit.
CLEAR_SECONDS = 0.25  # marking a write's outbox row applied is best effort (the sync does it otherwise)
OPTIONS = "-c statement_timeout=2500 -c lock_timeout=2000 -c idle_in_transaction_session_timeout=5000"
# The last statement of every write: its revision, in commit order (see 002_revision_at_commit.sql), and
# its outbox row, unless the database clock says the write's deadline has passed (then nothing commits).
ALLOCATE = """
WITH allocated AS (UPDATE flag_revision_counter SET revision = nextval('flag_revision') RETURNING revision),
deadline AS (SELECT set_config('flagservice.deadline',
    (statement_timestamp() + make_interval(secs => %(remaining)s))::text, true) AS at)
INSERT INTO cache_outbox (key, version, revision) SELECT %(key)s, %(version)s, revision FROM allocated, deadline
WHERE clock_timestamp() < deadline.at::timestamptz
RETURNING id, revision"""
REVISION = "SELECT revision FROM flag_revision_counter"
LIST_AT_REVISION = """
SELECT c.revision, f.version, f.definition, f.updated_at FROM flag_revision_counter c
LEFT JOIN flags f ON f.definition IS NOT NULL ORDER BY f.key COLLATE "C" LIMIT %(limit)s"""
KEYS_AT_REVISION = """
SELECT c.revision, f.key, f.version, f.updated_at, CASE WHEN f.key = %(key)s THEN f.definition END AS definition
FROM flag_revision_counter c LEFT JOIN flags f ON f.definition IS NOT NULL"""
SYNC_STATE = """
SELECT (SELECT revision FROM flag_revision_counter) AS revision,
       (SELECT min(revision) FROM cache_outbox) AS oldest_kept,
       (SELECT count(*) FROM cache_outbox WHERE applied_at IS NULL) AS pending,
       (SELECT coalesce(json_object_agg(key, version), '{}') FROM (SELECT key, version FROM flags
         WHERE updated_at > clock_timestamp() - make_interval(secs => %(recent)s)
         ORDER BY updated_at DESC LIMIT 200) recent) AS recent"""


class DeadlineExceededError(StoreUnavailableError):
    """A database call outlived its deadline (the database is treated as unavailable)."""


class PostgresFlagRepository:
    """Each write is one transaction: the flag row (locked), an audit row, an outbox row and the revision.

    Every call has a deadline of the service's own (pg_deadline) and goes through a breaker: once a
    call failed, calls fail at once for a second instead of each waiting out its deadline.
    """

    def __init__(
        self,
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]],
        *,
        read_seconds: float = READ_SECONDS,
        write_seconds: float = WRITE_SECONDS,
    ) -> None:
        self._pool = pool
        self._read_seconds = read_seconds
        self._write_seconds = write_seconds
        self.breaker = CircuitBreaker(threshold=1, cooldown=1.0)
        # Set by the background sync: it probes a database whose breaker opened, so requests never do
        # (none waits out a deadline to find the database still gone); without it requests probe.
        self.probed_in_background = False

    @classmethod
    def connect(
        cls, conninfo: str | Callable[[], str], *, prepare: bool = True, **deadlines: float
    ) -> PostgresFlagRepository:
        """A pool of at most one connection per process, with client-side limits on every connection.

        `prepare=False` turns psycopg's prepared statements off, as RDS Proxy needs.
        """
        kwargs: dict[str, Any] = {
            "connect_timeout": 2,
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 2,
            "tcp_user_timeout": 3000,
            "options": OPTIONS,
            "row_factory": dict_row,
            # Reads are single statements: in autocommit they need no BEGIN, and the pool no ROLLBACK
            # round trip when it takes the connection back. Writes open their transaction explicitly.
            "autocommit": True,
        }
        if not prepare:
            kwargs["prepare_threshold"] = None
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]] = psycopg_pool.ConnectionPool(
            conninfo, min_size=0, max_size=1, kwargs=kwargs, timeout=READ_SECONDS, open=True, reconnect_timeout=0
        )
        return cls(pool, **deadlines)

    def close(self) -> None:
        self._pool.close()

    def _may_call(self, *, probe: bool) -> bool:
        if probe or not self.probed_in_background:
            return self.breaker.allow()
        return self.breaker.closed

    @contextmanager
    def _connection(self, deadline: Deadline, *, probe: bool = False) -> Iterator[psycopg.Connection[Row]]:
        """A pooled connection whose use is cut at `deadline`. A broken connection or a passed deadline
        opens the breaker; an error of one statement (a lock or statement timeout) does not."""
        if not self._may_call(probe=probe):
            raise StoreUnavailableError("the database is unavailable")
        try:
            with self._pool.connection(timeout=max(min(deadline.remaining, POOL_WAIT), 0.001)) as conn:
                try:
                    with enforced(conn, deadline):
                        yield conn
                except psycopg.OperationalError as exc:
                    if deadline.passed or conn.broken:
                        self.breaker.record_failure()
                    if deadline.passed:
                        raise DeadlineExceededError("the database did not answer in time") from exc
                    raise
        except psycopg_pool.PoolTimeout as exc:
            self.breaker.record_failure()
            raise DeadlineExceededError("the database is unavailable") from exc
        self.breaker.record_success()

    def _retried(self, attempt: int, exc: psycopg.OperationalError, deadline: Deadline) -> None:
        """A pooled connection may have died since its last use: one retry on a fresh one, then give up."""
        if attempt or deadline.passed:
            self.breaker.record_failure()
            raise StoreUnavailableError("the database is unavailable") from exc

    def _read(
        self, query: Callable[[psycopg.Connection[Row]], T], *, seconds: float | None = None, probe: bool = False
    ) -> T:
        """Run a read within the read deadline, retried once on a broken connection."""
        deadline = Deadline(seconds if seconds is not None else self._read_seconds)
        for attempt in range(2):
            try:
                with self._connection(deadline, probe=probe) as conn:
                    return query(conn)
            except psycopg.OperationalError as exc:
                self._retried(attempt, exc, deadline)
        raise AssertionError("unreachable")

    @contextmanager
    def _write_transaction(self) -> Iterator[tuple[psycopg.Connection[Row], Deadline]]:
        """A transaction on a connection proven alive first (a write is never retried once it began);
        COMMIT is never sent after the write's deadline."""
        deadline = Deadline(self._write_seconds, grace=COMMIT_GRACE)
        for attempt in range(2):
            try:
                with self._connection(deadline) as conn:
                    try:
                        psycopg_pool.ConnectionPool.check_connection(conn)
                    except psycopg.OperationalError as exc:
                        self._retried(attempt, exc, deadline)
                        continue
                    with conn.transaction():
                        yield conn, deadline
                        if deadline.passed:
                            raise DeadlineExceededError("the write outlived its deadline; nothing was written")
                    return
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError("the database could not complete the write") from exc
        raise AssertionError("unreachable")

    def get(self, key: str) -> StoredFlag | None:
        sql = "SELECT version, definition, updated_at FROM flags WHERE key = %s AND definition IS NOT NULL"
        row = self._read(lambda c: c.execute(sql, (key,)).fetchone())
        return _stored(row) if row else None

    def get_many(self, keys: list[str]) -> dict[str, StoredFlag]:
        sql = "SELECT version, definition, updated_at FROM flags WHERE key = ANY(%s) AND definition IS NOT NULL"
        rows = self._read(lambda c: c.execute(sql, (keys,)).fetchall())
        return {flag.key: flag for flag in map(_stored, rows)}

    def list_flags(self, *, after: str | None, limit: int) -> list[StoredFlag]:
        # One collation for the comparison and the order (byte order, whatever the database's default:
        # RDS's en_US.UTF-8 puts "a_b" before "a-b"), else a page boundary skips or repeats flags.
        # '' sorts before every key, so one range condition serves the first page too (index flags_key_c).
        sql = (
            "SELECT version, definition, updated_at FROM flags WHERE definition IS NOT NULL"
            """ AND key COLLATE "C" > coalesce(%(after)s::text, '') ORDER BY key COLLATE "C" LIMIT %(limit)s"""
        )
        rows = self._read(lambda c: c.execute(sql, {"after": after, "limit": limit}).fetchall())
        return [_stored(row) for row in rows]

    def list_at_revision(self, *, limit: int) -> tuple[int, list[StoredFlag]]:
        """Every live flag and the committed revision they are exactly the state of (one statement)."""
        return self._read(lambda c: _listed(c.execute(LIST_AT_REVISION, {"limit": limit}).fetchall()))

    def list_if_changed(self, since: int | None, *, limit: int) -> tuple[int, list[StoredFlag] | None]:
        """As list_at_revision, unless the committed revision is still `since`: then only that revision (one
        tiny statement) and None. Both statements run on one connection under one read deadline, so a
        database that hangs costs this call no longer than any other read."""

        def query(conn: psycopg.Connection[Row]) -> tuple[int, list[StoredFlag] | None]:
            if since is not None and _revision(conn.execute(REVISION).fetchone()) == since:
                return since, None
            return _listed(conn.execute(LIST_AT_REVISION, {"limit": limit}).fetchall())

        return self._read(query)

    def keys_at_revision(self, key: str) -> tuple[int, set[str], StoredFlag | None]:
        """The keys of every live flag, the committed revision they are the state of, and the flag `key`."""
        rows = self._read(lambda c: c.execute(KEYS_AT_REVISION, {"key": key}).fetchall())
        flag = next((_stored(row) for row in rows if row["definition"] is not None), None)
        return int(rows[0]["revision"]), {row["key"] for row in rows if row["key"] is not None}, flag

    def save(self, definition: FlagDefinition, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(definition.key, lambda _: definition, action, actor, if_match)

    def update(self, key: str, change: Change, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(key, change, action, actor, if_match)

    def delete(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(key, lambda _: None, WriteAction.DELETE, actor, if_match)

    def _write(self, key: str, change: Change, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        """Lock the row, check the preconditions and compute the new definition from the locked current one,
        so a change never applies to a stale read, then record it with its revision taken last."""
        with self._write_transaction() as (conn, deadline):
            current = self._lock_row(conn, key)
            live = _stored(current) if current["definition"] is not None else None
            check_precondition(key, action, live.version if live else None, if_match)
            if action is WriteAction.CREATE and live is not None:
                action = WriteAction.REPLACE
            after = change(live)
            return self._record(conn, deadline, key, current, after.to_dict() if after else None, action, actor)

    @staticmethod
    def _lock_row(conn: psycopg.Connection[Row], key: str) -> Row:
        # The row exists from the first write on (a tombstone after a delete); a placeholder with
        # version 0 makes the very first write lockable too and vanishes if the write is refused.
        conn.execute("INSERT INTO flags (key, version) VALUES (%s, 0) ON CONFLICT (key) DO NOTHING", (key,))
        sql = "SELECT version, updated_at, definition FROM flags WHERE key = %s FOR UPDATE"  # not a "flag read"
        row = conn.execute(sql, (key,)).fetchone()
        assert row is not None
        return row

    @staticmethod
    def _record(
        conn: psycopg.Connection[Row],
        deadline: Deadline,
        key: str,
        current: Row,
        after: dict[str, Any] | None,
        action: WriteAction,
        actor: str,
    ) -> WriteResult:
        version = current["version"] + 1
        stored = conn.execute(
            "UPDATE flags SET version = %s, definition = %s, updated_at = clock_timestamp()"
            " WHERE key = %s RETURNING version, definition, updated_at",
            (version, Json(after) if after is not None else None, key),
        ).fetchone()
        assert stored is not None
        before = Json(current["definition"]) if current["definition"] is not None else None
        conn.execute(
            "INSERT INTO flag_audit (key, version, action, actor, before, after) VALUES (%s, %s, %s, %s, %s, %s)",
            (key, version, action.value, actor, before, Json(after) if after is not None else None),
        )
        remaining = max(0.0, deadline.remaining - COMMIT_MARGIN)
        allocated = conn.execute(ALLOCATE, {"remaining": remaining, "key": key, "version": version}).fetchone()
        if allocated is None:
            raise DeadlineExceededError("the write outlived its deadline; nothing was written")
        flag = _stored(stored) if after is not None else None
        return WriteResult(
            key=key,
            version=version,
            revision=allocated["revision"],
            action=action,
            flag=flag,
            outbox_id=allocated["id"],
        )

    def history(self, key: str, *, before_version: int | None, limit: int) -> list[HistoryEntry]:
        sql = (
            "SELECT key, version, action, actor, at, before, after FROM flag_audit WHERE key = %(key)s"
            " AND (%(before)s::bigint IS NULL OR version < %(before)s) ORDER BY version DESC LIMIT %(limit)s"
        )
        exists = "SELECT 1 FROM flag_audit WHERE key = %s LIMIT 1"

        def query(conn: psycopg.Connection[Row]) -> list[HistoryEntry]:
            rows = conn.execute(sql, {"key": key, "before": before_version, "limit": limit}).fetchall()
            if not rows and conn.execute(exists, (key,)).fetchone() is None:
                raise FlagNotFoundError("no such flag", key=key)
            return [_history(row) for row in rows]

        return self._read(query)

    def history_entry(self, key: str, version: int) -> HistoryEntry | None:
        sql = "SELECT key, version, action, actor, at, before, after FROM flag_audit WHERE key = %s AND version = %s"
        row = self._read(lambda c: c.execute(sql, (key, version)).fetchone())
        return _history(row) if row else None

    def revision(self) -> int:
        """The committed revision: every write visible now has a revision at or below it."""
        return self._read(lambda c: _revision(c.execute(REVISION).fetchone()))

    def sync_state(self, *, recent_seconds: float = 60.0) -> SyncState:
        """What the background sync compares Redis with, in one round trip: the committed revision, the
        outbox, and the version of every flag written in the last `recent_seconds`."""
        row = self._read(lambda c: c.execute(SYNC_STATE, {"recent": recent_seconds}).fetchone(), probe=True)
        assert row is not None
        oldest = row["oldest_kept"]
        recent = {str(key): int(version) for key, version in row["recent"].items()}
        return SyncState(int(row["revision"]), int(oldest) if oldest is not None else None, int(row["pending"]), recent)

    def pending_outbox(self, *, limit: int) -> list[OutboxEntry]:
        sql = "SELECT id, key, version, revision FROM cache_outbox WHERE applied_at IS NULL ORDER BY id LIMIT %s"
        return self._outbox(sql, (limit,))

    def outbox_since(self, revision: int, *, applied_within_seconds: float, limit: int) -> list[OutboxEntry]:
        """Rows a Redis at `revision` may lack: newer ones, and any whose cache step happened lately."""
        sql = (
            "SELECT id, key, version, revision FROM cache_outbox WHERE revision > %s"
            " OR applied_at > clock_timestamp() - make_interval(secs => %s) ORDER BY revision LIMIT %s"
        )
        return self._outbox(sql, (revision, applied_within_seconds, limit))

    def _outbox(self, sql: str, params: tuple[Any, ...]) -> list[OutboxEntry]:
        rows = self._read(lambda c: c.execute(sql, params).fetchall())
        return [OutboxEntry(id=r["id"], key=r["key"], version=r["version"], revision=r["revision"]) for r in rows]

    def clear_outbox(self, ids: list[int], *, best_effort: bool = False) -> None:
        """Mark rows applied (kept an hour for repairs, then pruned); `best_effort`: a short deadline (a
        write's own row, which the background sync marks otherwise)."""
        if ids:
            sql = "UPDATE cache_outbox SET applied_at = clock_timestamp() WHERE id = ANY(%s) AND applied_at IS NULL"
            self._read(lambda c: c.execute(sql, (ids,)), seconds=CLEAR_SECONDS if best_effort else None)

    def prune_outbox(self, *, older_than_seconds: float, limit: int) -> int:
        sql = (
            "DELETE FROM cache_outbox WHERE id IN (SELECT id FROM cache_outbox WHERE applied_at <"
            " clock_timestamp() - make_interval(secs => %s) ORDER BY id LIMIT %s)"
        )
        return int(self._read(lambda c: c.execute(sql, (older_than_seconds, limit)).rowcount))

    def ping(self) -> None:
        self._read(lambda c: c.execute("SELECT 1").fetchone(), seconds=min(PING_SECONDS, self._read_seconds))

    def available(self) -> bool:
        return self._may_call(probe=False)
