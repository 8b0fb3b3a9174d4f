"""RedisPoolPeakInUse: the most connections in use at once during a request, on a real Redis.

A gauge read after the request would always say 0 (everything is back in the pool): the alarm on it
could never fire. The peak is what the handler sends (telemetry.record_answer).
"""

from __future__ import annotations

import pytest

from flagservice import telemetry, wiring
from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.adapters.redis_pool import PeakTrackingPool
from flagservice.settings import load_settings


def test_the_peak_is_the_most_connections_checked_out_at_once_since_the_last_take(redis_url: str) -> None:
    client = RedisFlagCache.client_for(redis_url, max_connections=5)
    pool = client.connection_pool
    assert isinstance(pool, PeakTrackingPool)

    held = [pool.get_connection() for _ in range(3)]
    for connection in held:
        pool.release(connection)
    client.ping()

    assert pool.in_use() == 0  # what a gauge at the end of the request reads
    assert pool.take_peak() == 3
    assert pool.take_peak() == 0  # a new period starts from what is in use now
    client.close()


def test_a_container_watches_its_cache_pool(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_pool_peak", None)
    settings = load_settings({"REDIS_URL": redis_url, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/postgres"})

    cache = wiring.build_cache(settings)
    cache.ping()

    assert telemetry._pool_peak is not None and telemetry._pool_peak() == 1  # noqa: SLF001
