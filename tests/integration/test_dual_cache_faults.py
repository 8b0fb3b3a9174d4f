"""The dual-write cache of a blue/green move against real servers, with the inactive Redis paused (SIGSTOP).

The cache reads come from is the session's Redis; the inactive one is started here and paused: nothing
fails, the waits on it are bounded (the request path waits on it at most twice, then its breaker opens),
and once it resumes its repair pass gives it every write it missed, the kill switch first.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.cache_aside import CacheAside
from flagservice.cache_move import inactive_sync
from flagservice.dual_cache import INACTIVE_COOLDOWN, DualWriteCache
from flagservice.flags.model import FlagDefinition
from flagservice.ports import CacheOutcome
from flagservice.service import FlagService
from local.embedded import ServerProcess
from tests import servers
from tests.conftest import clean_database, redis_cache
from tests.redis_replies import fastest_wait, on, replies_awaited

pytestmark = [pytest.mark.fault]
WORST_WAIT = 2 * 0.05 + 0.1 + 0.02  # one retry of the 50 ms command timeout, a 100 ms connect, a margin


@pytest.fixture
def inactive_server() -> Iterator[ServerProcess]:
    server = servers.redis_for_tests()
    yield server
    server.resume()
    server.stop()


@pytest.fixture
def moving(postgres_url: str, redis_url: str, inactive_server: ServerProcess) -> Iterator[FlagService]:
    clean_database(postgres_url)
    env = f"t{uuid.uuid4().hex[:12]}"
    dual = DualWriteCache(redis_cache(redis_url, env=env), redis_cache(inactive_server.url, env=env))
    repository = PostgresFlagRepository.connect(postgres_url)
    service = FlagService(repository, reads=CacheAside(repository, dual))
    for cache in (dual.active, dual.inactive):
        cache.seed_revision(0)
    for i in range(5):
        service.put_flag(FlagDefinition.model_validate({"key": f"f{i}", "enabled": True}), actor="t", if_match=None)
    yield service
    repository.close()


def dual_of(service: FlagService) -> DualWriteCache:
    cache = service.reads.cache
    assert isinstance(cache, DualWriteCache)
    return cache


def test_a_paused_inactive_cache_fails_nothing_and_is_waited_on_at_most_twice(
    moving: FlagService, inactive_server: ServerProcess
) -> None:
    # Given the inactive cache paused (connections open, nothing answers)
    inactive_server.pause()

    # When writes and reads are made, and their waits on the inactive cache timed
    waits, outcomes, awaited = [], [], []
    for i in range(6):
        started = time.perf_counter()
        with replies_awaited() as replies:
            moving.patch_flag(f"f{i % 5}", {"description": f"change {i}"}, actor="t", if_match=None)
            outcomes.append(moving.get_flag(f"f{i % 5}").outcome)
        waits.append(time.perf_counter() - started)
        awaited.append(on(inactive_server.port, replies))

    # Then all succeeded from the active cache; the first two waited at most the bound, the rest not at all
    print("writes and reads with the inactive cache paused (s):", [round(w, 4) for w in waits],
          "waits on it:", [[round(reply.seconds, 4) for reply in replies] for replies in awaited])  # fmt: skip
    assert set(outcomes) == {CacheOutcome.HIT}
    assert all(awaited[:2]) and fastest_wait(awaited[:2]) < 2 * WORST_WAIT, awaited  # the timeout's size
    assert awaited[2:] == [[], [], [], []], awaited


def test_the_inactive_cache_gets_every_write_it_missed_once_it_resumes(
    moving: FlagService, inactive_server: ServerProcess
) -> None:
    # Given a kill switch and other writes made while the inactive cache was paused
    dual = dual_of(moving)
    inactive_server.pause()
    killed = moving.patch_flag("f1", {"enabled": False}, actor="oncall", if_match=None)
    changed = moving.patch_flag("f2", {"description": "while paused"}, actor="t", if_match=None)
    inactive_server.resume()

    # When its breaker lets a probe through (after its cooldown) and its repair pass runs
    deadline = time.monotonic() + 2 * INACTIVE_COOLDOWN
    while not dual.inactive_breaker.allow() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inactive_sync(moving.reads.repository, dual).run_once()

    # Then it holds the kill switch at its version, and its revision is PostgreSQL's
    entries, signal = dual.inactive.read_many(["f1", "f2"])
    assert entries["f1"].version == killed.version and entries["f1"].flag is not None
    assert entries["f1"].flag.definition.enabled is False
    assert entries["f2"].version == changed.version
    assert signal.revision == moving.reads.repository.revision()
