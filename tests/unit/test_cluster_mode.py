"""REDIS_CLUSTER_MODE without a cluster: parsing, and a client that connects only when first used."""

from __future__ import annotations

import pytest

from flagservice import wiring
from flagservice.adapters.redis_pool import LazyCluster
from flagservice.settings import SettingsError, cluster_mode, load_settings

BASE = {"REDIS_URL": "redis://127.0.0.1:6380/0", "DATABASE_URL": "postgresql://u@127.0.0.1:5433/db"}


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), ("false", False), ("", False)])
def test_the_setting_reads_the_usual_booleans(raw: str, expected: bool) -> None:
    assert load_settings({**BASE, "REDIS_CLUSTER_MODE": raw}).REDIS_CLUSTER_MODE is expected
    assert cluster_mode({"REDIS_CLUSTER_MODE": raw}) is expected


def test_the_event_stream_refuses_an_invalid_value_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="REDIS_CLUSTER_MODE"):
        cluster_mode({"REDIS_CLUSTER_MODE": "sometimes"})


def test_the_service_is_built_without_connecting_to_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """RedisCluster connects when constructed; the service must start (and fall back) while the cache is down."""
    monkeypatch.setenv("REDIS_CLUSTER_MODE", "true")
    cache = wiring.build_cache(wiring.get_settings())
    assert isinstance(cache._client, LazyCluster)  # noqa: SLF001
    assert cache.pool_in_use() == 0
