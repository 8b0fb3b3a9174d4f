"""Redis killed, paused and returning empty: reads never fail, waits are bounded, the cache refills itself.

Each test starts its own redis-server (the session's PostgreSQL is shared, cleaned per test).
Timeouts are proven by behaviour: elapsed time against a paused server, not configured values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.breaker import CircuitBreaker
from flagservice.cache_aside import CacheAside
from flagservice.errors import FlagServiceError
from flagservice.flags.model import FlagDefinition
from flagservice.ports import CacheOutcome
from flagservice.service import FlagService
from flagservice.sync import sync_inline
from local.embedded import ServerProcess
from tests import servers
from tests.conftest import clean_database, redis_cache
from tests.redis_replies import fastest_wait, replies_awaited

L1_REVALIDATE = 0.25
COMMAND_TIMEOUT = 0.05
RETRIES = 1
WORST_WAIT = (1 + RETRIES) * COMMAND_TIMEOUT + 0.02  # the timeout with one retry, plus a small margin


@pytest.fixture
def redis_server() -> Iterator[ServerProcess]:
    server = servers.redis_for_tests()
    yield server
    server.resume()
    server.stop()


@pytest.fixture
def flags(postgres_url: str, redis_server: ServerProcess) -> FlagService:
    clean_database(postgres_url)
    repository = PostgresFlagRepository.connect(postgres_url)
    reads = CacheAside(repository, redis_cache(redis_server.url), breaker=CircuitBreaker(threshold=3, cooldown=1.0))
    service = FlagService(repository, reads=sync_inline(reads))
    for i in range(5):
        service.put_flag(FlagDefinition.model_validate({"key": f"f{i}", "enabled": True}), actor="t", if_match=None)
    return service


def read_all(service: FlagService) -> list[CacheOutcome]:
    return [service.get_flag(f"f{i}").outcome for i in range(5)]


def test_redis_killed_under_reads_fails_none_and_hits_again_after_it_returns_empty(
    flags: FlagService, redis_server: ServerProcess
) -> None:
    # Given every flag served from Redis
    assert set(read_all(flags)) == {CacheOutcome.HIT}
    # When Redis is killed, past the in-process cache's revalidation
    redis_server.kill()
    time.sleep(L1_REVALIDATE * 1.2)  # past the in-process cache's revalidation: every read must ask Redis
    # Then no read fails: every one bypasses to PostgreSQL
    failures, outcomes = 0, []
    for _ in range(40):
        try:
            outcomes += read_all(flags)
        except FlagServiceError:
            failures += 1
    assert failures == 0 and set(outcomes) == {CacheOutcome.BYPASS}
    # And once Redis is back, empty, reads become hits again
    restarted = redis_server.restart()  # same port, and empty: no persistence
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and CacheOutcome.HIT not in read_all(flags):
        time.sleep(0.1)
    assert set(read_all(flags)) == {CacheOutcome.HIT}
    restarted.stop()


def test_a_paused_redis_costs_a_request_at_most_the_timeout_with_one_retry_then_nothing(
    flags: FlagService, redis_server: ServerProcess
) -> None:
    # Given a warm cache, then Redis paused (connections open, nothing answers)
    read_all(flags)
    redis_server.pause()
    time.sleep(L1_REVALIDATE * 1.2)
    # When six reads are made, each in a request's scope as the handler makes them, and their waits on Redis timed
    waits, awaited = [], []
    for _ in range(6):
        started = time.perf_counter()
        with flags.request(), replies_awaited() as replies:
            assert flags.get_flag("f1").outcome is CacheOutcome.BYPASS
        waits.append(time.perf_counter() - started)
        awaited.append(replies)
    # Then each of the first ones waits at most the timeout with one retry, and once the breaker opens, not at all
    print("reads against a paused redis (s):", [round(w, 4) for w in waits],
          "waits on it:", [[round(reply.seconds, 4) for reply in replies] for replies in awaited])  # fmt: skip
    assert awaited[0] and max(len(replies) for replies in awaited[:3]) <= 1 + RETRIES, awaited
    assert fastest_wait(awaited[:3]) < 2 * WORST_WAIT, awaited  # the timeout's size
    assert awaited[3:] == [[], [], []], awaited  # breaker open: Redis is not waited on at all
    redis_server.resume()


def test_a_kill_switch_flipped_while_redis_is_paused_holds_when_it_resumes(
    flags: FlagService, redis_server: ServerProcess, postgres_url: str
) -> None:
    # Given another container that has the flag enabled in its caches
    other_container = FlagService(PostgresFlagRepository.connect(postgres_url), redis_cache(redis_server.url))
    other_container.reads.cache._env = flags.reads.cache._env  # noqa: SLF001 - same environment namespace
    assert other_container.get_flag("f1").flag.definition.enabled is True
    # When the kill switch is flipped while Redis is paused
    redis_server.pause()
    result = flags.patch_flag("f1", {"enabled": False}, actor="oncall", if_match=None)
    assert result.flag is not None and result.flag.definition.enabled is False
    # Then once Redis resumes, the other container serves it disabled within 5 s
    redis_server.resume()
    deadline = time.monotonic() + 5
    seen = True
    while time.monotonic() < deadline and seen:
        seen = other_container.get_flag("f1").flag.definition.enabled
        time.sleep(0.05)
    assert seen is False


def test_the_in_process_cache_is_not_trusted_past_its_revalidation_once_redis_is_gone(
    flags: FlagService, redis_server: ServerProcess
) -> None:
    read_all(flags)
    redis_server.kill()
    within = flags.get_flag("f1").outcome
    time.sleep(L1_REVALIDATE * 1.2)
    assert (within, flags.get_flag("f1").outcome) == (CacheOutcome.HIT, CacheOutcome.BYPASS)


def test_an_exhausted_pool_falls_back_after_the_pool_timeout_and_counts_it(postgres_url: str, redis_url: str) -> None:
    # Given a pool of one connection, held by a blocked command
    clean_database(postgres_url)
    exhausted = []
    cache = redis_cache(redis_url, client={"max_connections": 1}, on_pool_exhausted=lambda: exhausted.append(1))
    service = FlagService(PostgresFlagRepository.connect(postgres_url), cache)
    service.put_flag(FlagDefinition.model_validate({"key": "f", "enabled": True}), actor="t", if_match=None)
    held = cache._client.connection_pool.get_connection()  # noqa: SLF001 - a blocked command holding the only one
    time.sleep(L1_REVALIDATE * 1.2)
    # When a read needs Redis
    started = time.perf_counter()
    assert service.get_flag("f").outcome is CacheOutcome.BYPASS
    # Then it bypassed within the pool timeout, and the exhaustion was counted
    assert time.perf_counter() - started < 2 * WORST_WAIT and exhausted
    cache._client.connection_pool.release(held)  # noqa: SLF001
