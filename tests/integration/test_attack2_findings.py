"""Hostile review of the blue/green, cluster-mode and right-sizing additions: each test failed before its fix."""

from __future__ import annotations

import time

from redis.cluster import key_slot

from flagservice.adapters import redis_keys
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.breaker import CircuitBreaker
from flagservice.cache_aside import CacheAside
from flagservice.flags.model import FlagDefinition
from flagservice.ports import CacheOutcome
from flagservice.service import FlagService
from flagservice.sync import sync_inline
from tests.conftest import clean_database
from tests.integration.test_redis_cluster import L1_REVALIDATE, WORST_WAIT, cluster_cache, env_of
from tests.servers import RedisClusterNodes


def test_a_slot_no_node_serves_costs_a_read_no_more_than_a_hung_primary(
    redis_cluster: RedisClusterNodes, postgres_url: str
) -> None:
    """CLUSTERDOWN (the slot unassigned, or a node cut off from the majority) made redis-py sleep 250 ms and
    refresh the topology inside every read that met it: the whole read budget, on each breaker probe too."""
    # Given flags served from a warm cluster cache
    clean_database(postgres_url)
    repository = PostgresFlagRepository.connect(postgres_url)
    cache = cluster_cache(redis_cluster)
    reads = CacheAside(repository, cache, breaker=CircuitBreaker(threshold=3, cooldown=1.0))
    service = FlagService(repository, reads=sync_inline(reads))
    service.put_flag(FlagDefinition.model_validate({"key": "f1", "enabled": True}), actor="t", if_match=None)
    service.get_flag("f1")
    assert service.get_flag("f1").outcome is CacheOutcome.HIT
    # When the node holding the environment's slot stops serving it (it answers CLUSTERDOWN Hash slot not served)
    revision_key = redis_keys.revision_key(env_of(cache))
    owner, slot = redis_cluster.owner(revision_key), key_slot(revision_key.encode())
    admin = redis_cluster.admin(owner)
    admin.execute_command("CLUSTER", "DELSLOTS", slot)
    try:
        time.sleep(L1_REVALIDATE * 1.2)
        waits = []
        for _ in range(4):
            started = time.perf_counter()
            with service.request():
                assert service.get_flag("f1").outcome is CacheOutcome.BYPASS
            waits.append(time.perf_counter() - started)
    finally:
        admin.execute_command("CLUSTER", "ADDSLOTS", slot)
        admin.close()
    repository.close()
    # Then every read falls back within the budget of a hung primary (timeout, one retry), never more
    print("waits against an unserved slot (s):", [round(w, 4) for w in waits])
    assert max(waits) < 2 * WORST_WAIT, waits
