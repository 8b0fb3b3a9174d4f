"""REDIS_CLUSTER_MODE without a cluster: parsing, and a client that connects only when first used."""

from __future__ import annotations

import pytest

from flagservice import wiring
from flagservice.adapters.redis_pool import LazyCluster
from flagservice.dual_cache import DualWriteCache
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


MOVE = {**BASE, "REDIS_SECONDARY_URL": "redis://127.0.0.1:7000/0"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"REDIS_SECONDARY_CLUSTER_MODE": "sometimes"}, "invalid setting REDIS_SECONDARY_CLUSTER_MODE"),
        ({"REDIS_SECONDARY_URL": "", "REDIS_SECONDARY_CLUSTER_MODE": "true"}, "REDIS_SECONDARY_CLUSTER_MODE needs"),
    ],
)
def test_an_invalid_secondary_cluster_mode_refuses_to_start(override: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**MOVE, **override})


@pytest.mark.parametrize(("primary", "secondary"), [("false", "true"), ("true", "false"), ("true", "true")])
def test_each_cache_of_a_move_has_its_own_cluster_mode(primary: str, secondary: str) -> None:
    settings = load_settings({**MOVE, "REDIS_CLUSTER_MODE": primary, "REDIS_SECONDARY_CLUSTER_MODE": secondary})
    following = settings.secondary()

    assert following is not None
    assert following.REDIS_URL == "redis://127.0.0.1:7000/0"
    assert settings.REDIS_CLUSTER_MODE is (primary == "true")
    assert following.REDIS_CLUSTER_MODE is (secondary == "true")
    assert following.REDIS_SECONDARY_CLUSTER_MODE is False and following.secondary() is None


@pytest.mark.parametrize("reads_from", ["primary", "secondary"])
def test_a_move_from_standalone_to_a_cluster_builds_one_client_of_each_kind(reads_from: str) -> None:
    # Given a move from a standalone cache (REDIS_URL) to a cluster (REDIS_SECONDARY_URL), reads from either
    settings = load_settings({**MOVE, "REDIS_SECONDARY_CLUSTER_MODE": "true", "REDIS_READ_FROM": reads_from})

    # When the service's cache is built (nothing connects yet)
    cache = wiring.build_flag_cache(settings)

    # Then the standalone cache has a plain client and the cluster a cluster client, whichever answers reads
    assert isinstance(cache, DualWriteCache)
    clustered = cache.active if reads_from == "secondary" else cache.inactive
    plain = cache.inactive if reads_from == "secondary" else cache.active
    assert isinstance(clustered._client, LazyCluster) and not isinstance(plain._client, LazyCluster)  # type: ignore[attr-defined]  # noqa: SLF001
    assert plain._client.connection_pool.connection_kwargs["port"] == 6380  # type: ignore[attr-defined]  # noqa: SLF001
