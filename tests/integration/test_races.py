"""The four cache-aside races, each forced deterministically at the exact point where a write can get in.

A reader (one container) and a writer (another container) share real Redis and PostgreSQL. The hook
runs the writer's whole write (commit and cache step) between the reader's database read and its
fill, or between one writer's commit and its cache step. Afterwards the cache must hold nothing
older than PostgreSQL. The same scenarios against a naive cache (plain SET) leave stale entries,
which proves the hooks sit where the race is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flagservice.adapters import redis_keys
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.cache_aside import CacheAside, RaceHooks
from flagservice.errors import FlagNotFoundError
from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.ports import Guarded
from flagservice.service import FlagService
from tests.conftest import clean_database, redis_cache

ITERATIONS = 40


class NaiveRedisFlagCache(RedisFlagCache):
    """The cache-aside most systems ship: fills and write-through updates are plain SETs."""

    def _plain_set(self, key: str, flag: StoredFlag | None, version: int) -> Guarded:
        value, ttl = self._value(flag, version)
        self._client.set(redis_keys.flag_key(self._env, key), value, px=ttl)
        return Guarded.STORED

    def fill(self, key: str, flag: StoredFlag | None, *, version: int, observed_revision: int) -> Guarded:
        return self._plain_set(key, flag, version)

    def apply_write(self, key: str, flag: StoredFlag | None, *, version: int, revision: int) -> Guarded:
        self._client.set(redis_keys.revision_key(self._env), revision)
        return self._plain_set(key, flag, version)

    def fill_keys(self, keys: set[str], *, revision: int, observed_revision: int) -> Guarded:
        """The key set stored as read, and trusted as current (no guard against a create meanwhile)."""
        name, current = redis_keys.keyset_key(self._env), self._client.get(redis_keys.revision_key(self._env))
        self._client.delete(name, redis_keys.lease_key(self._env, "#keys"))
        self._client.hset(name, mapping={"#rev": int(current or 0), **dict.fromkeys(keys, 1)})
        return Guarded.STORED


def definition(key: str, enabled: bool) -> FlagDefinition:
    return FlagDefinition.model_validate({"key": key, "enabled": enabled})


class World:
    """A reader and a writer service (two containers) on the same stores, with hooks on the reader."""

    def __init__(self, postgres_url: str, redis_url: str, naive: bool) -> None:
        self.hooks = RaceHooks()
        self.fired = 0
        # Entries are born soft-expired, so every read refreshes from PostgreSQL and reaches the hook.
        reader_cache = redis_cache(redis_url, soft_ttl=lambda: 0.0)
        env = reader_cache._env  # noqa: SLF001 - the writer must share the reader's namespace
        if naive:
            reader_cache = NaiveRedisFlagCache(
                reader_cache._client,
                env=env,
                soft_ttl=lambda: 0.0,  # noqa: SLF001
                stale_max_age=86400,
                negative_ttl=30,
            )
        writer_cache = type(reader_cache)(
            RedisFlagCache.client_for(redis_url, max_connections=2),
            env=env,
            soft_ttl=lambda: 0.0,
            stale_max_age=86400,
            negative_ttl=30,
        )
        self.repository = PostgresFlagRepository.connect(postgres_url)
        writer_cache.seed_revision(self.repository.revision())
        self.reader_cache = reader_cache
        self.reader = FlagService(self.repository, reads=CacheAside(self.repository, reader_cache, hooks=self.hooks))
        writer_repository = PostgresFlagRepository.connect(postgres_url)
        self.writer = FlagService(writer_repository, writer_cache)
        self.second_writer = FlagService(PostgresFlagRepository.connect(postgres_url), writer_cache)

    def once(self, hook: Callable[[str], None]) -> Callable[[str], None]:
        fired = []

        def run(key: str) -> None:
            if not fired:
                fired.append(key)
                self.fired += 1
                hook(key)

        return run

    def stale(self, key: str) -> bool:
        """Does the cache hold something older than PostgreSQL (or a flag PostgreSQL no longer has), or
        does its key set deny a flag PostgreSQL has?"""
        read = self.reader_cache.read(key, lease_ms=1)
        entry, truth = read.entry, self.repository.get(key)
        if entry is None:
            return read.absent and truth is not None
        if truth is None:
            return entry.flag is not None
        return entry.flag is None or entry.version < truth.version


def fill_after_invalidation(world: World, key: str) -> None:
    world.writer.put_flag(definition(key, True), actor="w", if_match=None)
    world.hooks.after_repository_read = world.once(
        lambda k: world.writer.patch_flag(k, {"enabled": False}, actor="w", if_match=None)
    )
    world.reader.get_flag(key)


def writers_reordered(world: World, key: str) -> None:
    world.writer.put_flag(definition(key, True), actor="w", if_match=None)
    world.hooks.before_cache_step = world.once(
        lambda k: world.second_writer.patch_flag(k, {"description": "later"}, actor="w2", if_match=None)
    )
    world.reader.patch_flag(key, {"enabled": False}, actor="w1", if_match=None)


def negative_fill_racing_a_create(world: World, key: str) -> None:
    world.hooks.after_repository_read = world.once(
        lambda k: world.writer.put_flag(definition(k, True), actor="w", if_match=None)
    )
    with pytest.raises(FlagNotFoundError):
        world.reader.get_flag(key)
    # The created flag's entry may be evicted at any time: then only the key set answers for it.
    world.reader_cache._client.delete(redis_keys.flag_key(world.reader_cache._env, key))  # noqa: SLF001


def fill_after_delete(world: World, key: str) -> None:
    world.writer.put_flag(definition(key, True), actor="w", if_match=None)
    world.hooks.after_repository_read = world.once(lambda k: world.writer.delete_flag(k, actor="w", if_match=None))
    world.reader.get_flag(key)


RACES = [fill_after_invalidation, writers_reordered, negative_fill_racing_a_create, fill_after_delete]


def count_stale(postgres_url: str, redis_url: str, race: Any, naive: bool) -> int:
    clean_database(postgres_url)
    world = World(postgres_url, redis_url, naive)
    stale = 0
    for i in range(ITERATIONS):
        world.hooks.after_repository_read = world.hooks.before_cache_step = lambda key: None
        key = f"race-{i}"
        world.reader_cache._client.delete(redis_keys.keyset_key(world.reader_cache._env))  # noqa: SLF001 - a fresh key set each round
        race(world, key)
        stale += world.stale(key)
    assert world.fired == ITERATIONS, "the write must get in at the hook in every iteration"
    return stale


@pytest.mark.parametrize("race", RACES, ids=lambda race: race.__name__)
def test_the_race_leaves_no_stale_entry(postgres_url: str, redis_url: str, race: Any) -> None:
    assert count_stale(postgres_url, redis_url, race, naive=False) == 0


@pytest.mark.parametrize("race", RACES, ids=lambda race: race.__name__)
def test_a_naive_cache_loses_the_same_race(postgres_url: str, redis_url: str, race: Any) -> None:
    assert count_stale(postgres_url, redis_url, race, naive=True) == ITERATIONS
