"""The FlagRepository on PostgreSQL (psycopg 3 and psycopg_pool): the source of truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg.rows import dict_row
from psycopg.types.json import Json

from flagservice.breaker import CircuitBreaker
from flagservice.errors import FlagNotFoundError, StoreUnavailableError
from flagservice.flags.model import TRUSTED, FlagDefinition, StoredFlag
from flagservice.ports import HistoryEntry, IfMatch, OutboxEntry, WriteAction, WriteResult, check_precondition

T = TypeVar("T")
Row = dict[str, Any]


def _stored(row: Row) -> StoredFlag:
    definition = FlagDefinition.model_validate(row["definition"], context=TRUSTED)
    return StoredFlag(definition=definition, version=row["version"], updated_at=row["updated_at"])


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


class PostgresFlagRepository:
    """Each write is one transaction: the flag row (locked), an audit row, an outbox row and the revision."""

    def __init__(self, pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]]) -> None:
        self._pool = pool
        # Once no connection could be made, calls fail at once for a second instead of each waiting
        # the pool's timeout: writes answer 503 fast and reads fall back without stalling.
        self._breaker = CircuitBreaker(threshold=1, cooldown=1.0)

    @classmethod
    def connect(
        cls, conninfo: str | Callable[[], str], *, timeout: float = 1.0, prepare: bool = True
    ) -> PostgresFlagRepository:
        """A pool of at most one connection per process, with short connect and statement timeouts.

        `prepare=False` turns psycopg's prepared statements off, as RDS Proxy needs.
        """
        kwargs: dict[str, Any] = {
            "connect_timeout": max(2, int(timeout)),
            "options": "-c statement_timeout=2000 -c lock_timeout=1000 -c idle_in_transaction_session_timeout=5000",
            "row_factory": dict_row,
            # Reads are single statements: in autocommit they need no BEGIN, and the pool no ROLLBACK
            # round trip when it takes the connection back. Writes open their transaction explicitly.
            "autocommit": True,
        }
        if not prepare:
            kwargs["prepare_threshold"] = None
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Row]] = psycopg_pool.ConnectionPool(
            conninfo, min_size=0, max_size=1, kwargs=kwargs, timeout=timeout, open=True, reconnect_timeout=0
        )
        return cls(pool)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Row]]:
        """A pooled connection; psycopg's OperationalError (a broken connection) passes through."""
        if not self._breaker.allow():
            raise StoreUnavailableError("the database is unavailable")
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            self._breaker.record_failure()
            raise StoreUnavailableError("the database is unavailable") from exc
        self._breaker.record_success()

    def _retried(self, attempt: int, exc: psycopg.OperationalError) -> None:
        """A pooled connection may have died since its last use: one retry on a fresh one, then give up."""
        if attempt:
            self._breaker.record_failure()
            raise StoreUnavailableError("the database is unavailable") from exc

    @contextmanager
    def _checked_connection(self) -> Iterator[psycopg.Connection[Row]]:
        """A connection proven alive before a write starts, so a write is never retried after it began."""
        for attempt in range(2):
            with self._connection() as conn:
                try:
                    psycopg_pool.ConnectionPool.check_connection(conn)
                except psycopg.OperationalError as exc:
                    self._retried(attempt, exc)
                    continue
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    self._breaker.record_failure()
                    raise StoreUnavailableError("the database is unavailable") from exc
                return

    def _read(self, query: Callable[[psycopg.Connection[Row]], T]) -> T:
        """Run a read, retried once on a broken connection."""
        for attempt in range(2):
            try:
                with self._connection() as conn:
                    return query(conn)
            except psycopg.OperationalError as exc:
                self._retried(attempt, exc)
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
        sql = (
            "SELECT version, definition, updated_at FROM flags WHERE definition IS NOT NULL"
            ' AND (%(after)s::text IS NULL OR key > %(after)s) ORDER BY key COLLATE "C" LIMIT %(limit)s'
        )
        rows = self._read(lambda c: c.execute(sql, {"after": after, "limit": limit}).fetchall())
        return [_stored(row) for row in rows]

    def save(self, definition: FlagDefinition, *, action: WriteAction, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(definition.key, definition.to_dict(), action, actor, if_match)

    def delete(self, key: str, *, actor: str, if_match: IfMatch) -> WriteResult:
        return self._write(key, None, WriteAction.DELETE, actor, if_match)

    def _write(
        self, key: str, after: dict[str, Any] | None, action: WriteAction, actor: str, if_match: IfMatch
    ) -> WriteResult:
        with self._checked_connection() as conn, conn.transaction():
            current = self._lock_row(conn, key)
            live_version = current["version"] if current["definition"] is not None else None
            check_precondition(key, action, live_version, if_match)
            if action is WriteAction.CREATE and live_version is not None:
                action = WriteAction.REPLACE
            return self._record(conn, key, current, after, action, actor)

    @staticmethod
    def _lock_row(conn: psycopg.Connection[Row], key: str) -> Row:
        # The row exists from the first write on (a tombstone after a delete); a placeholder with
        # version 0 makes the very first write lockable too and vanishes if the write is refused.
        conn.execute("INSERT INTO flags (key, version) VALUES (%s, 0) ON CONFLICT (key) DO NOTHING", (key,))
        row = conn.execute("SELECT version, definition FROM flags WHERE key = %s FOR UPDATE", (key,)).fetchone()
        assert row is not None
        return row

    @staticmethod
    def _record(
        conn: psycopg.Connection[Row],
        key: str,
        current: Row,
        after: dict[str, Any] | None,
        action: WriteAction,
        actor: str,
    ) -> WriteResult:
        version = current["version"] + 1
        stored = conn.execute(
            "UPDATE flags SET version = %s, definition = %s, updated_at = clock_timestamp()"
            " WHERE key = %s RETURNING version, definition, updated_at, nextval('flag_revision') AS revision",
            (version, Json(after) if after is not None else None, key),
        ).fetchone()
        assert stored is not None
        before = Json(current["definition"]) if current["definition"] is not None else None
        conn.execute(
            "INSERT INTO flag_audit (key, version, action, actor, before, after) VALUES (%s, %s, %s, %s, %s, %s)",
            (key, version, action.value, actor, before, Json(after) if after is not None else None),
        )
        outbox = conn.execute(
            "INSERT INTO cache_outbox (key, version, revision) VALUES (%s, %s, %s) RETURNING id",
            (key, version, stored["revision"]),
        ).fetchone()
        assert outbox is not None
        flag = _stored(stored) if after is not None else None
        return WriteResult(
            key=key, version=version, revision=stored["revision"], action=action, flag=flag, outbox_id=outbox["id"]
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
        row = self._read(lambda c: c.execute("SELECT last_value, is_called FROM flag_revision").fetchone())
        assert row is not None
        return int(row["last_value"]) if row["is_called"] else 0

    def pending_outbox(self, *, limit: int) -> list[OutboxEntry]:
        sql = "SELECT id, key, version, revision FROM cache_outbox ORDER BY id LIMIT %s"
        rows = self._read(lambda c: c.execute(sql, (limit,)).fetchall())
        return [OutboxEntry(id=r["id"], key=r["key"], version=r["version"], revision=r["revision"]) for r in rows]

    def clear_outbox(self, ids: list[int]) -> None:
        if ids:
            self._read(lambda c: c.execute("DELETE FROM cache_outbox WHERE id = ANY(%s)", (ids,)))

    def ping(self) -> None:
        self._read(lambda c: c.execute("SELECT 1").fetchone())
