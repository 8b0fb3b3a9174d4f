"""Migrations: in order, once, under an advisory lock, recorded; the audit table is append-only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from flagservice.adapters.migrations import migrate, migration_files


@pytest.fixture
def empty_database(postgres_url: str) -> Iterator[str]:
    name = f"m_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(**{**conninfo_to_dict(postgres_url), "dbname": name})
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_concurrent_migrations_apply_each_file_exactly_once(empty_database: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: migrate(empty_database), range(4)))
    names = [name for name, _ in migration_files()]
    assert sorted(name for applied in results for name in applied) == names
    with psycopg.connect(empty_database) as conn:
        recorded = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    assert recorded == names
    assert migrate(empty_database) == []


def test_the_audit_table_is_append_only(empty_database: str) -> None:
    migrate(empty_database)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("INSERT INTO flag_audit (key, version, action, actor) VALUES ('k', 1, 'create', 'a')")
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("UPDATE flag_audit SET actor = 'b'")
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("DELETE FROM flag_audit")
        assert conn.execute("SELECT actor FROM flag_audit").fetchone() == ("a",)


def test_every_migration_is_idempotent_on_its_own(empty_database: str) -> None:
    migrate(empty_database)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        for _, sql in migration_files():
            conn.execute(sql.encode())
