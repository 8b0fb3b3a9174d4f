"""What a blue/green cache move's phase means for the service: which cache each setting names.

cdk.json's `cacheMove.phase` (stacks/config.py) is deployed through the canary like any release: each
phase is a settings change of the flag function (docs/operations.md explains why not a runtime switch).

| phase | REDIS_URL | REDIS_SECONDARY_URL | REDIS_READ_FROM | monitored |
|---|---|---|---|---|
| (no move) | current | - | - | current |
| dual-write | current | next | primary | current |
| switch-reads | current | next | secondary | next |
| finish | next | - | - | next |

Each cache keeps its own cluster mode, so a move can switch it on or off: REDIS_CLUSTER_MODE follows the
cache REDIS_URL names (the current one until `finish`, the next one from `finish`),
REDIS_SECONDARY_CLUSTER_MODE=true when the next generation is a cluster during `dual-write` and
`switch-reads`. A cluster's endpoint parameter holds its configuration endpoint (constructs/cache.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from stacks.config import CacheConfig, EnvironmentConfig
from stacks.constructs.network import CACHE_PORT
from stacks.constructs.stateful_parameters import cache_parameter_keys


@dataclass(frozen=True)
class CacheInUse:
    """One cache generation as the service stack sees it: endpoint and name (SSM references) and its config."""

    endpoint: str
    name: str
    config: CacheConfig


@dataclass(frozen=True)
class CacheSettings:
    """The cache REDIS_URL names, the one reads come from, and the function's cache settings beyond REDIS_URL
    and REDIS_CACHE_NAME (cluster modes, and a move's)."""

    primary: CacheInUse
    reads: CacheInUse
    environment: dict[str, str] = field(default_factory=dict)


def cache_settings(config: EnvironmentConfig, current: CacheInUse, value: Callable[[str], str]) -> CacheSettings:
    """The table of the module docstring; `value` reads one of the environment's SSM parameters by key."""
    move, following = config.cache_move, config.next_cache
    if move is None or following is None:
        return CacheSettings(current, current, _cluster_modes(current))
    endpoint_key, name_key = cache_parameter_keys(following)
    after = CacheInUse(value(endpoint_key), value(name_key), following)
    if move.phase == "finish":
        return CacheSettings(after, after, _cluster_modes(after))
    reads = "secondary" if move.phase == "switch-reads" else "primary"
    environment = _cluster_modes(current, after) | {
        "REDIS_SECONDARY_URL": f"rediss://{after.endpoint}:{CACHE_PORT}",
        "REDIS_SECONDARY_CACHE_NAME": after.name,
        "REDIS_READ_FROM": reads,
    }
    return CacheSettings(current, after if reads == "secondary" else current, environment)


def _cluster_modes(primary: CacheInUse, secondary: CacheInUse | None = None) -> dict[str, str]:
    """Each cache's own cluster mode (the runtime's default, false, is left unset)."""
    modes = {"REDIS_CLUSTER_MODE": primary, "REDIS_SECONDARY_CLUSTER_MODE": secondary}
    return {name: "true" for name, cache in modes.items() if cache is not None and cache.config.cluster_mode}
