"""A blue/green move from a standalone cache to a cluster-mode one, through the service built from settings.

The session's Redis 7 is the current (standalone) cache, the session's Redis Cluster the next generation
(REDIS_SECONDARY_CLUSTER_MODE=true), PostgreSQL the session's: the phases of stacks/cache_move.py as the
function's settings, each a fresh service (`wiring`), as each phase is a new version of the function.
"""

from __future__ import annotations

import uuid

import pytest

from flagservice import wiring
from flagservice.adapters.redis_pool import LazyCluster
from flagservice.dual_cache import DualWriteCache
from flagservice.flags.model import FlagDefinition
from flagservice.ports import FlagCache
from flagservice.service import FlagService
from tests.conftest import clean_database
from tests.servers import RedisClusterNodes

MARK = 99  # a version no write made: a read answering it shows which cache answered


def phase(monkeypatch: pytest.MonkeyPatch, reads_from: str) -> tuple[FlagService, DualWriteCache]:
    """A new service (as a new version of the function) in the phase reading from `reads_from`."""
    monkeypatch.setenv("REDIS_READ_FROM", reads_from)
    wiring.reset()
    service = wiring.get_service()
    cache = service.reads.cache
    assert isinstance(cache, DualWriteCache)
    return service, cache


def put(service: FlagService, key: str) -> None:
    service.put_flag(FlagDefinition.model_validate({"key": key, "enabled": True}), actor="t", if_match=None)


def version_in(cache: FlagCache, key: str) -> int | None:
    entry = cache.read(key).entry
    return None if entry is None else entry.version


def mark(cache: FlagCache, key: str, service: FlagService) -> None:
    """Give one cache a version of `key` that only it holds (as if a write had reached it alone)."""
    flag = service.get_flag(key).flag.model_copy(update={"version": MARK})
    revision = cache.signal().revision or 0
    cache.apply_write(key, flag, version=MARK, revision=revision + 1)


def is_cluster(cache: FlagCache) -> bool:
    return isinstance(getattr(cache, "_client", None), LazyCluster)


def test_a_move_to_a_cluster_writes_both_and_reads_from_the_active_one(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, redis_url: str, redis_cluster: RedisClusterNodes
) -> None:
    # Given the service's settings for a move from the standalone Redis to the cluster (no L1: every read asks Redis)
    clean_database(postgres_url)
    settings = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "REDIS_SECONDARY_URL": redis_cluster.url,
                "REDIS_SECONDARY_CLUSTER_MODE": "true", "FLAGS_ENV": f"t{uuid.uuid4().hex[:12]}",
                "L1_MAX_AGE_MS": "0"}  # fmt: skip
    for name, value in settings.items():
        monkeypatch.setenv(name, value)

    # When in dual-write a flag is written, the next cache warmed, and another flag written
    service, dual = phase(monkeypatch, "primary")
    put(service, "before")
    assert wiring.warm_next_cache().behind == []
    put(service, "during")

    # Then both caches hold both, each through its own kind of client, and reads come from the standalone one
    assert not is_cluster(dual.active) and is_cluster(dual.inactive)
    assert [version_in(cache, key) for cache in (dual.active, dual.inactive) for key in ("before", "during")] == [1] * 4
    mark(dual.inactive, "before", service)
    assert service.get_flag("before").flag.version == 1
    mark(dual.active, "before", service)
    assert service.get_flag("before").flag.version == MARK

    # When reads are switched to the cluster (a new version of the function) and a flag written
    service, dual = phase(monkeypatch, "secondary")
    put(service, "after")

    # Then it reached both, and reads come from the cluster: a version only the standalone cache holds is not seen
    assert is_cluster(dual.active) and not is_cluster(dual.inactive)
    assert [version_in(dual.active, "after"), version_in(dual.inactive, "after")] == [1, 1]
    mark(dual.inactive, "after", service)
    assert service.get_flag("after").flag.version == 1
    mark(dual.active, "after", service)
    assert service.get_flag("after").flag.version == MARK
