"""REDIS_CLUSTER_MODE against a real Redis Cluster (3 primaries, 3 replicas on loopback, the session's).

Every key of an environment lives in one slot (the `{env}` hash tag), so every command, script and
pipeline of the adapter goes to one primary; REDIS_URL may name any node, a replica too; a slot that
moves (a migration, a failover) is followed; a hung primary costs a read what a hung standalone Redis
does, proven by elapsed time against a paused node.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from flagservice.adapters import redis_keys
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.adapters.redis_credentials import RefreshingCredentials
from flagservice.breaker import CircuitBreaker
from flagservice.cache_aside import CacheAside
from flagservice.errors import CacheUnavailableError
from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.ports import CacheOutcome, Guarded
from flagservice.service import FlagService
from flagservice.sync import sync_inline
from tests.conftest import clean_database, redis_cache
from tests.integration.test_event_stream import REPO, Stream
from tests.redis_replies import fastest_wait, on, replies_awaited
from tests.servers import RedisClusterNodes

COMMAND_TIMEOUT = 0.05
WORST_WAIT = (1 + 1) * COMMAND_TIMEOUT + 0.02  # the timeout with one retry (topology refreshes included)
L1_REVALIDATE = 0.25


def stored(version: int, key: str = "checkout", enabled: bool = True) -> StoredFlag:
    definition = FlagDefinition.model_validate({"key": key, "enabled": enabled})
    return StoredFlag(definition=definition, version=version, updated_at=datetime(2026, 1, 2, tzinfo=UTC))


def cluster_cache(
    cluster: RedisClusterNodes, url: str | None = None, *, client_options: dict[str, Any] | None = None, **options: Any
) -> RedisFlagCache:
    return redis_cache(url or cluster.url, client={"cluster": True, **(client_options or {})}, **options)


def warm_cluster_service(
    redis_cluster: RedisClusterNodes, postgres_url: str
) -> tuple[FlagService, RedisFlagCache, CacheAside]:
    """A service whose one flag (f1) is served from a warm cluster cache, with a breaker that opens after 3 failures."""
    clean_database(postgres_url)
    repository = PostgresFlagRepository.connect(postgres_url)
    cache = cluster_cache(redis_cluster)
    reads = CacheAside(repository, cache, breaker=CircuitBreaker(threshold=3, cooldown=1.0))
    service = FlagService(repository, reads=sync_inline(reads))
    service.put_flag(FlagDefinition.model_validate({"key": "f1", "enabled": True}), actor="t", if_match=None)
    service.get_flag("f1")
    assert service.get_flag("f1").outcome is CacheOutcome.HIT
    return service, cache, reads


def env_of(cache: RedisFlagCache) -> str:
    return cache._env  # noqa: SLF001 - the random environment redis_cache chose


def exercise_every_path(cache: RedisFlagCache) -> None:
    """Every method of the adapter that touches Redis: each key kind, script and pipeline."""
    cache.seed_revision(1)
    assert cache.read("checkout", lease_ms=500).leased
    assert cache.fill("checkout", stored(1), version=1, observed_revision=1) is Guarded.STORED
    assert cache.apply_write("other", stored(2, "other"), version=2, revision=2) is Guarded.STORED
    assert cache.read_snapshot(lease_ms=500)[2]
    assert cache.fill_snapshot([stored(1), stored(2, "other")], revision=2, observed_revision=2) is Guarded.STORED
    assert cache.read("missing", lease_ms=500).keys_needed
    assert cache.fill_keys({"checkout", "other"}, revision=2, observed_revision=2) is Guarded.STORED
    assert cache.read("missing", lease_ms=500).absent
    entries, signal = cache.read_many(["checkout", "other"])
    assert set(entries) == {"checkout", "other"} and signal.revision == 2
    assert cache.written_since(1) == {"other"}
    cache.count("checkout", hit=True)
    cache.flush_stats()
    assert cache.stats()[0] == {"checkout": 1} and cache.most_read(5) == ["checkout"]
    cache.ping()


def keys_by_node(cluster: RedisClusterNodes, env: str) -> dict[int, list[bytes]]:
    """Every key of `env` on every live node, by port (replicas too: they hold their primary's copy)."""
    found = {}
    for node in cluster.live():
        names = list(cluster.admin(node).scan_iter(match=f"*{{{env}}}*", count=1000))
        if names:
            found[node.port] = names
    return found


def test_every_key_and_script_of_an_environment_stays_in_one_slot_and_a_replica_url_works(
    redis_cluster: RedisClusterNodes,
) -> None:
    # Given a cache whose REDIS_URL names a replica, not a primary
    probe = cluster_cache(redis_cluster)
    replica = redis_cluster.replicas_of(redis_keys.revision_key(env_of(probe)))[0]
    cache = cluster_cache(redis_cluster, replica.url)
    env = env_of(cache)
    # When every path of the adapter runs (a cross-slot script or pipeline would fail with CROSSSLOT)
    exercise_every_path(cache)
    # Then every key it wrote (entries, leases, key set, snapshot, written set, stats) is in one slot
    found = keys_by_node(redis_cluster, env)
    names = {name for names in found.values() for name in names}
    assert len(names) >= 8 and {key_slot(name) for name in names} == {key_slot(redis_keys.revision_key(env).encode())}
    owner = redis_cluster.owner(redis_keys.revision_key(env))
    shard = {owner.port, *(node.port for node in redis_cluster.replicas_of(redis_keys.revision_key(env)))}
    assert owner.port in found and set(found) <= shard  # one primary (and its replica's copy), no other shard
    # And dropping the environment finds them on that one node (SCAN of the slot's primary only)
    cache.drop_all()
    assert cache.read("checkout").entry is None and cache.signal().revision == 2  # the revision copy stays


def move_slot(cluster: RedisClusterNodes, key: str) -> int:
    """Migrate `key`'s slot, keys and all, to another primary (the steps of `redis-cli --cluster reshard`)."""
    source = cluster.owner(key)
    slot = key_slot(key.encode())
    target = next(node for node in cluster.live() if node is not source and _is_primary(cluster, node))
    src, dst = cluster.admin(source), cluster.admin(target)
    src_id, dst_id = (c.execute_command("CLUSTER MYID").decode() for c in (src, dst))
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    while names := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *names)
    for node in cluster.live():
        if _is_primary(cluster, node):
            cluster.admin(node).execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
    return target.port


def _is_primary(cluster: RedisClusterNodes, node: Any) -> bool:
    return bool(cluster.admin(node).info("replication")["role"] == "master")


def test_a_moved_slot_is_followed_with_its_entries(redis_cluster: RedisClusterNodes) -> None:
    # Given a warm cache
    cache = cluster_cache(redis_cluster)
    cache.seed_revision(1)
    cache.apply_write("checkout", stored(1), version=1, revision=1)
    assert cache.read("checkout").entry is not None
    # When the environment's slot moves to another primary (the client's slot map is now wrong: MOVED)
    new_owner = move_slot(redis_cluster, redis_keys.revision_key(env_of(cache)))
    # Then reads and writes follow it, entries included
    assert cache.read("checkout").entry.version == 1  # type: ignore[union-attr]
    assert cache.apply_write("checkout", stored(2), version=2, revision=2) is Guarded.STORED
    assert cache.read("checkout").entry.version == 2  # type: ignore[union-attr]
    assert redis_cluster.owner(redis_keys.revision_key(env_of(cache))).port == new_owner


def test_a_failover_is_followed(redis_cluster: RedisClusterNodes) -> None:
    # Given a warm cache
    cache = cluster_cache(redis_cluster)
    key = redis_keys.revision_key(env_of(cache))
    cache.seed_revision(1)
    cache.apply_write("checkout", stored(1), version=1, revision=1)
    old = redis_cluster.owner(key)
    replica = redis_cluster.replicas_of(key)[0]
    # When its replica takes over (a manual failover: the old primary becomes a replica, answering MOVED)
    redis.Redis(port=replica.port, socket_timeout=5).execute_command("CLUSTER FAILOVER")
    deadline = time.monotonic() + 10
    while redis_cluster.owner(key).port != replica.port and time.monotonic() < deadline:
        time.sleep(0.05)
    redis_cluster.wait_healthy()
    # Then the same client reads and writes on the new primary
    assert redis_cluster.owner(key).port == replica.port != old.port
    assert cache.read("checkout").entry.version == 1  # type: ignore[union-attr]
    assert cache.apply_write("checkout", stored(2), version=2, revision=2) is Guarded.STORED
    assert cache.read("checkout").entry.version == 2  # type: ignore[union-attr]


def test_a_cluster_that_cannot_be_reached_is_a_cache_outage_every_time() -> None:
    cache = redis_cache("redis://127.0.0.1:1/0", client={"cluster": True})  # nothing listens on port 1
    for _ in range(2):  # the failed build is forgotten, and tried again on the next use
        with pytest.raises(CacheUnavailableError):
            cache.read("checkout")


def test_a_hung_primary_costs_a_read_the_timeout_with_one_retry_then_nothing(
    redis_cluster: RedisClusterNodes, postgres_url: str
) -> None:
    # Given flags served from a warm cluster cache
    service, cache, reads = warm_cluster_service(redis_cluster, postgres_url)
    # When the primary holding the environment's slot hangs (SIGSTOP: connections open, nothing answers)
    owner = redis_cluster.owner(redis_keys.revision_key(env_of(cache)))
    owner.pause()
    try:
        time.sleep(L1_REVALIDATE * 1.2)
        waits, awaited = [], []
        for _ in range(6):
            started = time.perf_counter()
            with service.request(), replies_awaited() as replies:  # as the handler does: after one failure, the
                assert service.get_flag("f1").outcome is CacheOutcome.BYPASS  # request skips Redis
            waits.append(time.perf_counter() - started)
            awaited.append(replies)
    finally:
        owner.resume()
    reads.repository.close()
    # Then a read waits at most the timeout with one retry (redis-py's topology refresh included), then nothing
    hung = [[round(reply.seconds, 4) for reply in on(owner.port, replies)] for replies in awaited]
    print("reads against a hung cluster primary (s):", [round(w, 4) for w in waits], "waits on it:", hung)
    assert all(awaited[:3]) and max(len(on(owner.port, replies)) for replies in awaited[:3]) <= 2, awaited
    assert fastest_wait(awaited[:3]) < 2 * WORST_WAIT, awaited  # the timeout's size
    assert awaited[3:] == [[], [], []], awaited


def test_credentials_the_cluster_refuses_are_read_again(redis_cluster: RedisClusterNodes) -> None:
    """As redis_credentials promises standalone: a rotated password is picked up on the first refusal."""
    # Given a user on every node, and a cache signing in with its password (cached for an hour)
    published = ["first-password-0123456789"]

    def set_password(password: str) -> None:
        for node in redis_cluster.live():
            redis_cluster.admin(node).execute_command("ACL", "SETUSER", "rotated", "on", "resetpass", f">{password}",
                                                      "~*", "+@all")  # fmt: skip

    set_password(published[0])
    credentials = RefreshingCredentials(lambda: ("rotated", published[0]), max_age=3600)
    cache = cluster_cache(redis_cluster, client_options={"credentials": credentials})
    try:
        cache.seed_revision(1)
        # When the password changes and every connection drops (a failover, an idle timeout)
        published[0] = "second-password-0123456789"
        set_password(published[0])
        for node in redis_cluster.live():
            redis_cluster.admin(node).execute_command("CLIENT", "KILL", "USER", "rotated")
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(cache.signal().revision)
            except CacheUnavailableError:
                outcomes.append(None)
        # Then at most the first call fails, and the credentials were read again once
        assert outcomes[1:] == [1, 1] and credentials.refusals == 1, outcomes
    finally:
        for node in redis_cluster.live():
            redis_cluster.admin(node).execute_command("ACL", "DELUSER", "rotated")


def test_the_local_event_stream_follows_the_revision_in_a_cluster(redis_cluster: RedisClusterNodes) -> None:
    # Given the event stream process in cluster mode, REDIS_URL naming a node that does not hold the slot
    cache = cluster_cache(redis_cluster)
    env = env_of(cache)
    elsewhere = next(n for n in redis_cluster.live() if n is not redis_cluster.owner(redis_keys.revision_key(env)))
    settings = {"PYTHONPATH": f"{REPO / 'runtime'}:{REPO}", "REDIS_URL": elsewhere.url, "FLAGS_ENV": env,
                "REDIS_CLUSTER_MODE": "true"}  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "local.events", "--port", "0"], stdout=subprocess.PIPE, text=True,
        env={**os.environ, **settings},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline().split()[1])
        stream = Stream(port, "?since=0")
        stream.head()
        # When the revision moves (a write's cache step)
        cache.seed_revision(1)
        cache.apply_write("checkout", stored(1), version=1, revision=7)
        # Then the stream announces it
        deadline = time.monotonic() + 5
        seen = 0
        while seen != 7 and time.monotonic() < deadline:
            seen = stream.next_event()[0]
        assert seen == 7
        stream.close()
    finally:
        child.terminate()
        child.wait(timeout=5)
