"""A server that restarts reading the new cache of a blue/green move, before the new cache's repair ran."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from flagservice import wiring
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.cache_aside import CacheAside
from flagservice.dual_cache import DualWriteCache
from flagservice.flags.model import FlagDefinition
from flagservice.service import FlagService
from local.embedded import ServerProcess
from tests import servers
from tests.conftest import clean_database, redis_cache

pytestmark = [pytest.mark.fault]
PROPAGATION = 1.0  # DESIGN.md: an acknowledged write is served everywhere within 1 s


@pytest.fixture
def new_cache() -> Iterator[ServerProcess]:
    server = servers.redis_for_tests()
    yield server
    server.resume()
    server.stop()


def test_a_server_restarted_onto_the_new_cache_never_serves_a_kill_switch_it_missed(
    postgres_url: str, redis_url: str, new_cache: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server dual-writing (reads from the current cache) that flipped a kill switch the new cache missed:
    # two writes timed out on it (paused; they land when it resumes), so its breaker skipped the kill switch
    clean_database(postgres_url)
    env = f"t{uuid.uuid4().hex[:12]}"
    dual = DualWriteCache(redis_cache(redis_url, env=env), redis_cache(new_cache.url, env=env))
    repository = PostgresFlagRepository.connect(postgres_url)
    writer = FlagService(repository, reads=CacheAside(repository, dual))
    for cache in (dual.active, dual.inactive):
        cache.seed_revision(0)
    for key in ("kill", "other"):
        writer.put_flag(FlagDefinition.model_validate({"key": key, "enabled": True}), actor="t", if_match=None)
    new_cache.pause()
    for change in ("one", "two"):
        writer.patch_flag("other", {"description": change}, actor="t", if_match=None)
    writer.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    acknowledged = time.monotonic()
    new_cache.resume()
    repository.close()

    # When, twice the 1 s bound after the kill switch's 2xx, a server starts reading the new cache (switch-reads)
    for name, value in {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "REDIS_SECONDARY_URL": new_cache.url,
                        "REDIS_READ_FROM": "secondary", "FLAGS_ENV": env}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    time.sleep(max(0.0, acknowledged + 2 * PROPAGATION - time.monotonic()))  # the bound, with the 2x margin
    wiring.reset()
    try:
        service = wiring.get_service()
        with service.request():
            single = service.get_flag("kill").flag
            bulk = {flag.key: flag for flag in service.reads.all_flags().flags}
    finally:
        wiring.reset()

    # Then its very first reads serve the kill switch, on the single and the bulk path
    assert single.definition.enabled is False
    assert bulk["kill"].definition.enabled is False
