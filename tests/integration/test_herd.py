"""Herds: concurrent readers in separate processes cause one database read per flushed or missing flag.

The reads are counted by PostgreSQL itself (pg_stat_statements), never by our own counters.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis

from bench.common.cluster import count_statements
from flagservice import cache_aside
from flagservice.adapters.migrations import migrate
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.flags.model import FlagDefinition
from flagservice.service import FlagService
from local.embedded import ServerProcess
from tests import servers
from tests.conftest import redis_cache

READERS = 8
BULK = "*bulk*"  # the reader evaluates every flag instead of one
# Every statement that reads the flags table: a flag, several, the key set, the snapshot (not writes).
FLAG_READS = ("SELECT%FROM flags%", "SELECT%JOIN flags%")


@pytest.fixture(scope="module")
def counted_postgres() -> Iterator[ServerProcess]:
    """A PostgreSQL of its own with pg_stat_statements loaded."""
    server = count_statements(servers.postgres_for_tests())
    migrate(server.url)
    yield server
    server.stop()


def flag_reads(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        sql = "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s OR query LIKE %s"
        row = conn.execute(sql, FLAG_READS)
        return int(row.fetchone()[0])  # type: ignore[index]


def reset_counts(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def _reader(postgres_url: str, redis_url: str, env: str, key: str, start_at: float, out: multiprocessing.Queue) -> None:
    """One container: a fresh service (empty L1) that reads `key` at `start_at`.

    What is counted is the lease, not how fast a loaded machine schedules the leader: a follower waits for
    the leader's fill as long as its lease lives (not LEASE_WAIT, 200 ms, after which it reads PostgreSQL
    itself), and Redis commands get 1 s (not 50 ms, after which the read bypasses Redis)."""
    cache_aside.LEASE_WAIT = cache_aside.LEASE_MS / 1000  # this forked child only
    cache = redis_cache(redis_url, client={"command_timeout": 1.0})
    cache._env = env  # noqa: SLF001 - every container shares the environment namespace
    service = FlagService(PostgresFlagRepository.connect(postgres_url), cache)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        if key == BULK:
            out.put(service.evaluate_all({"targetingKey": "u"}, if_none_match=None).outcome.value)
        else:
            out.put(service.get_flag(key).outcome.value)
    except Exception as exc:  # noqa: BLE001 - reported to the test, which asserts on it
        out.put(type(exc).__name__)


def herd(postgres_url: str, redis_url: str, env: str, key: str) -> list[str]:
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = context.Queue()
    start_at = time.time() + 1.0
    workers = [
        context.Process(target=_reader, args=(postgres_url, redis_url, env, key, start_at, out)) for _ in range(READERS)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    return results


@pytest.fixture
def world(counted_postgres: ServerProcess, redis_url: str) -> tuple[FlagService, str]:
    with psycopg.connect(counted_postgres.url, autocommit=True) as conn:
        conn.execute("TRUNCATE flags, flag_audit, cache_outbox")
        conn.execute("UPDATE flag_revision_counter SET revision = 0")
    cache = redis_cache(redis_url)
    writer = FlagService(PostgresFlagRepository.connect(counted_postgres.url), cache)
    writer.put_flag(FlagDefinition.model_validate({"key": "hot", "enabled": True}), actor="t", if_match=None)
    return writer, cache._env  # noqa: SLF001


def test_a_flushed_flag_is_read_from_postgresql_once_for_a_herd(
    world: tuple[FlagService, str], counted_postgres: ServerProcess, redis_url: str
) -> None:
    _, env = world
    redis.Redis.from_url(redis_url).flushall()
    reset_counts(counted_postgres.url)
    results = herd(counted_postgres.url, redis_url, env, "hot")
    assert sorted(set(results)) <= ["HIT", "MISS"] and results.count("MISS") == 1, results
    assert flag_reads(counted_postgres.url) == 1


def test_a_missing_flag_is_read_once_per_herd_and_then_not_again(
    world: tuple[FlagService, str], counted_postgres: ServerProcess, redis_url: str
) -> None:
    _, env = world
    reset_counts(counted_postgres.url)
    results = herd(counted_postgres.url, redis_url, env, "absent")
    assert results == ["FlagNotFoundError"] * READERS
    assert flag_reads(counted_postgres.url) == 1
    herd(counted_postgres.url, redis_url, env, "absent")
    assert flag_reads(counted_postgres.url) == 1  # the key set answers for NEGATIVE_TTL_SECONDS


def test_cached_flags_cost_no_database_read(
    world: tuple[FlagService, str], counted_postgres: ServerProcess, redis_url: str
) -> None:
    _, env = world
    reset_counts(counted_postgres.url)
    assert set(herd(counted_postgres.url, redis_url, env, "hot")) == {"HIT"}
    assert flag_reads(counted_postgres.url) == 0


def test_a_bulk_herd_after_a_write_reads_the_flag_set_once(
    world: tuple[FlagService, str], counted_postgres: ServerProcess, redis_url: str
) -> None:
    writer, env = world
    herd(counted_postgres.url, redis_url, env, BULK)
    writer.patch_flag("hot", {"enabled": False}, actor="t", if_match=None)  # the snapshot is outdated now
    reset_counts(counted_postgres.url)
    results = herd(counted_postgres.url, redis_url, env, BULK)
    assert sorted(set(results)) <= ["HIT", "MISS"] and results.count("MISS") == 1, results
    assert flag_reads(counted_postgres.url) == 1
