"""Hostile review of the blue/green, cluster-mode and right-sizing additions: each test failed before its fix."""

from __future__ import annotations

import threading
import time

import pytest
from redis.cluster import key_slot

from flagservice.adapters import redis_keys
from flagservice.errors import CacheUnavailableError
from flagservice.ports import CacheOutcome
from tests import servers
from tests.conftest import redis_cache
from tests.integration.test_redis_cluster import L1_REVALIDATE, WORST_WAIT, env_of, warm_cluster_service
from tests.servers import RedisClusterNodes


def test_a_slot_no_node_serves_costs_a_read_no_more_than_a_hung_primary(
    redis_cluster: RedisClusterNodes, postgres_url: str
) -> None:
    """CLUSTERDOWN (the slot unassigned, or a node cut off from the majority) made redis-py sleep 250 ms and
    refresh the topology inside every read that met it: the whole read budget, on each breaker probe too."""
    # Given flags served from a warm cluster cache
    service, cache, reads = warm_cluster_service(redis_cluster, postgres_url)
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
    reads.repository.close()
    # Then every read falls back within the budget of a hung primary (timeout, one retry), never more
    print("waits against an unserved slot (s):", [round(w, 4) for w in waits])
    assert max(waits) < 2 * WORST_WAIT, waits


def test_concurrent_reads_against_an_unanswering_cluster_each_wait_for_one_client_build_at_most() -> None:
    """The cluster client is built under a lock: each caller that queued behind a failing build built again,
    so the eighth of eight concurrent reads waited for eight builds."""
    # Given a cluster-mode cache whose only known node accepts connections and answers nothing (paused)
    server = servers.redis_for_tests()
    try:
        server.pause()
        cache = redis_cache(server.url, client={"cluster": True, "max_connections": 16})

        # When eight requests read at once (a threaded local server; a request and the sync thread in Lambda)
        waits: list[float] = []

        def read() -> None:
            started = time.perf_counter()
            with pytest.raises(CacheUnavailableError):
                cache.signal()
            waits.append(time.perf_counter() - started)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.resume()
        server.stop()

    # Then none waited more than the budget of a read against a hung primary
    print("waits of concurrent reads while the client cannot be built (s):", sorted(round(w, 3) for w in waits))
    assert len(waits) == 8 and max(waits) < 2 * WORST_WAIT, waits
