"""/admin/cache/stats counts across containers, current as of each one's last completed request."""

from __future__ import annotations

from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.flags.model import FlagDefinition
from flagservice.service import FlagService
from tests.conftest import clean_database, redis_cache


def test_a_container_sees_the_reads_another_container_just_served(postgres_url: str, redis_url: str) -> None:
    clean_database(postgres_url)
    first = redis_cache(redis_url)
    second = redis_cache(redis_url, env=first._env)  # noqa: SLF001 - two containers of one environment
    serving = FlagService(PostgresFlagRepository.connect(postgres_url), first)
    asking = FlagService(PostgresFlagRepository.connect(postgres_url), second)
    serving.put_flag(FlagDefinition.model_validate({"key": "k", "enabled": True}), actor="t", if_match=None)
    # Given five requests served by one container (each ends its request scope: its counts go out)
    for _ in range(5):
        with serving.request():
            serving.get_flag("k")  # the first is a Redis hit, the rest in-process hits: all hits

    # When another container asks
    with asking.request():
        stats = asking.cache_stats()

    # Then it sees those five hits
    assert (stats["hits"], stats["misses"]) == (5, 0)
    assert stats["flags"] == [{"key": "k", "hits": 5, "misses": 0, "hitRate": 1.0}]
