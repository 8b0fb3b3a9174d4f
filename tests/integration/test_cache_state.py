"""What Redis holds, on real Redis and PostgreSQL: missing keys add nothing, a Redis that lost state is
detected and repaired, and a write reaches both sides of a canary."""

from __future__ import annotations

import contextlib

import redis

from flagservice.adapters import redis_keys
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.errors import FlagNotFoundError
from flagservice.flags.model import FlagDefinition
from flagservice.ports import CacheOutcome
from flagservice.service import FlagService
from tests.conftest import clean_database, redis_cache

MISSING_READS = 5000


def define(key: str, enabled: bool = True) -> FlagDefinition:
    return FlagDefinition.model_validate({"key": key, "enabled": enabled})


def namespace_size(client: redis.Redis, env: str) -> tuple[int, int]:
    """How many keys of the environment exist, and the bytes Redis says they use."""
    names = list(client.scan_iter(match=f"ff:{{{env}}}*", count=1000))
    return len(names), sum(int(client.memory_usage(name) or 0) for name in names)


def test_reads_of_missing_keys_do_not_grow_redis(postgres_url: str, redis_url: str) -> None:
    clean_database(postgres_url)
    cache = redis_cache(redis_url)
    service = FlagService(PostgresFlagRepository.connect(postgres_url), cache)
    service.put_flag(define("exists"), actor="t", if_match=None)
    client, env = cache._client, cache._env  # noqa: SLF001
    service.get_flag("exists")
    service.reads.finish()
    keys_before, bytes_before = namespace_size(client, env)
    # When 5,000 different keys that do not exist are read
    for i in range(MISSING_READS):
        with contextlib.suppress(FlagNotFoundError):
            service.get_flag(f"missing-{i}")
        service.reads.finish()  # each read's stats go out, as at the end of a request
    keys_after, bytes_after = namespace_size(client, env)
    # Then Redis grew by at most the key set: a handful of keys and far less than 200 KB
    assert keys_after - keys_before <= 10, (keys_before, keys_after)
    assert bytes_after - bytes_before < 200_000, (bytes_before, bytes_after)
    hits, misses, _ = cache.stats()
    assert set(hits) | set(misses) == {"exists"}


def test_a_redis_behind_what_a_container_saw_is_bypassed_then_repaired(postgres_url: str, redis_url: str) -> None:
    clean_database(postgres_url)
    cache = redis_cache(redis_url)
    service = FlagService(PostgresFlagRepository.connect(postgres_url), cache)
    service.put_flag(define("kill"), actor="t", if_match=None)
    old_entry = cache._client.get(redis_keys.flag_key(cache._env, "kill"))  # noqa: SLF001
    old_revision = cache.signal().revision
    service.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    assert service.get_flag("kill").flag.definition.enabled is False
    # Given a failover to a replica that missed the kill switch: the old entry and the old revision
    client = cache._client  # noqa: SLF001
    client.set(redis_keys.flag_key(cache._env, "kill"), old_entry)  # noqa: SLF001
    client.set(redis_keys.revision_key(cache._env), old_revision)  # noqa: SLF001
    service.reads.l1.clear()
    # When a container that saw the newer revision reads, it never serves the lost write's old value
    lookup = service.get_flag("kill")
    assert lookup.flag.definition.enabled is False
    # And once repaired (here the sync ran inline), the cache serves it again as a hit
    assert cache.signal().revision is not None and cache.signal().revision > old_revision
    assert service.get_flag("kill").outcome is CacheOutcome.HIT


def test_a_fresh_container_repairs_a_redis_behind_postgresql_in_its_next_sync(
    postgres_url: str, redis_url: str
) -> None:
    clean_database(postgres_url)
    cache = redis_cache(redis_url)
    writer = FlagService(PostgresFlagRepository.connect(postgres_url), cache)
    writer.put_flag(define("kill"), actor="t", if_match=None)
    old_entry = cache._client.get(redis_keys.flag_key(cache._env, "kill"))  # noqa: SLF001
    old_revision = cache.signal().revision
    writer.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    cache._client.set(redis_keys.flag_key(cache._env, "kill"), old_entry)  # noqa: SLF001
    cache._client.set(redis_keys.revision_key(cache._env), old_revision)  # noqa: SLF001
    # Given a container that never saw the newer revision, when its background sync runs
    fresh = FlagService(PostgresFlagRepository.connect(postgres_url), redis_cache(redis_url))
    fresh.reads.cache._env = cache._env  # type: ignore[union-attr]  # noqa: SLF001
    fresh.reads.on_suspect()
    # Then Redis holds the kill switch again
    assert fresh.get_flag("kill").flag.definition.enabled is False


def test_a_write_drops_the_flag_in_the_previous_and_the_next_schema_namespace(
    postgres_url: str, redis_url: str
) -> None:
    # Given entries for the flag under the previous and the next schema version
    clean_database(postgres_url)
    cache = redis_cache(redis_url)
    service = FlagService(PostgresFlagRepository.connect(postgres_url), cache)
    client, env = cache._client, cache._env  # noqa: SLF001
    others = [redis_keys.flag_key(env, "k", schema=redis_keys.SCHEMA_VERSION + step) for step in (-1, 1)]
    for name in others:
        client.set(name, "1|99999999999999||")
    # When the flag is written
    service.put_flag(define("k"), actor="t", if_match=None)
    # Then both are gone
    assert [client.exists(name) for name in others] == [0, 0]
