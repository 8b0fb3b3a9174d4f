"""The FlagCache contract: the same assertions against the fake, system Redis 7, embedded Redis 6.2, a Redis
Cluster (cluster mode: 3 primaries, 3 replicas), and the dual-write cache of a blue/green move (dual_cache.py)
over two fakes, over both real servers, and across cluster mode (a move from a standalone cache to a cluster,
reads from either: each cache keeps its own client)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flagservice.adapters import redis_cache as redis_cache_module
from flagservice.dual_cache import DualWriteCache
from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.ports import Guarded
from tests.conftest import redis_cache
from tests.fakes import InMemoryFlagCache

DUALS = {  # the dual-write params: (active, inactive)
    "dual-redis": ("redis_url", "embedded_redis_url"),  # reads from Redis 7, every write step to Redis 6.2 too
    "dual-standalone-cluster": ("redis_url", "redis_cluster"),  # dual-write of a move to cluster mode
    "dual-cluster-standalone": ("redis_cluster", "redis_url"),  # its switch-reads (or a move back)
}


def real_cache(request: pytest.FixtureRequest, fixture: str) -> Any:
    if fixture == "redis_cluster":
        return redis_cache(request.getfixturevalue(fixture).url, client={"cluster": True})
    return redis_cache(request.getfixturevalue(fixture))


@pytest.fixture(params=["fake", "redis-system", "redis-embedded", "redis-cluster", "dual-fake", *DUALS])
def any_cache(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return InMemoryFlagCache()
    if request.param == "dual-fake":
        return DualWriteCache(InMemoryFlagCache(), InMemoryFlagCache())
    if request.param in DUALS:
        active, inactive = (real_cache(request, fixture) for fixture in DUALS[request.param])
        return DualWriteCache(active, inactive)
    single = {"redis-system": "redis_url", "redis-embedded": "embedded_redis_url", "redis-cluster": "redis_cluster"}
    return real_cache(request, single[request.param])


def stored(version: int, key: str = "checkout", enabled: bool = True) -> StoredFlag:
    definition = FlagDefinition.model_validate({"key": key, "enabled": enabled})
    return StoredFlag(definition=definition, version=version, updated_at=datetime(2026, 1, 2, tzinfo=UTC))


def test_empty_cache_has_no_entry_and_no_revision(any_cache: Any) -> None:
    read = any_cache.read("checkout")
    assert read.entry is None and read.revision is None


def test_fill_needs_the_revision_copy_first(any_cache: Any) -> None:
    assert any_cache.fill("checkout", stored(1), version=1, observed_revision=0) is Guarded.NO_REVISION
    any_cache.seed_revision(5)
    assert any_cache.fill("checkout", stored(1), version=1, observed_revision=5) is Guarded.STORED
    read = any_cache.read("checkout")
    assert read.revision == 5 and read.entry.version == 1 and read.entry.flag == stored(1)


def test_the_revision_copy_never_goes_down(any_cache: Any) -> None:
    any_cache.seed_revision(9)
    any_cache.seed_revision(4)
    assert any_cache.signal().revision == 9


def test_a_fill_is_refused_once_a_write_was_applied_after_the_reader_looked(any_cache: Any) -> None:
    any_cache.seed_revision(1)
    any_cache.apply_write("other", stored(1, "other"), version=1, revision=2)
    assert any_cache.fill("checkout", stored(1), version=1, observed_revision=1) is Guarded.REFUSED
    assert any_cache.read("checkout").entry is None


def test_a_fill_never_replaces_a_newer_version(any_cache: Any) -> None:
    any_cache.seed_revision(3)
    any_cache.apply_write("checkout", stored(3), version=3, revision=3)
    assert any_cache.fill("checkout", stored(2), version=2, observed_revision=3) is Guarded.REFUSED
    assert any_cache.read("checkout").entry.version == 3


def test_a_negative_fill_never_hides_a_created_flag(any_cache: Any) -> None:
    any_cache.seed_revision(1)
    any_cache.apply_write("checkout", stored(1), version=1, revision=2)
    assert any_cache.fill("checkout", None, version=0, observed_revision=2) is Guarded.REFUSED
    assert any_cache.read("checkout").entry.flag is not None


def test_writes_applied_out_of_order_keep_the_newest(any_cache: Any) -> None:
    any_cache.seed_revision(1)
    any_cache.apply_write("checkout", stored(3, enabled=False), version=3, revision=3)
    any_cache.apply_write("checkout", stored(2), version=2, revision=2)
    read = any_cache.read("checkout")
    assert read.entry.version == 3 and read.entry.flag.definition.enabled is False and read.revision == 3


def test_a_delete_leaves_a_tombstone_that_refuses_older_fills(any_cache: Any) -> None:
    any_cache.seed_revision(1)
    any_cache.apply_write("checkout", None, version=2, revision=2)
    entry = any_cache.read("checkout").entry
    assert entry.flag is None and entry.version == 2
    assert any_cache.fill("checkout", stored(1), version=1, observed_revision=2) is Guarded.REFUSED


def test_fill_many_fills_every_flag_of_a_page_with_the_guards_of_fill(any_cache: Any) -> None:
    page = [stored(1, "a"), stored(2, "b"), stored(1, "c")]
    assert any_cache.fill_many(page, observed_revision=0) == [Guarded.NO_REVISION] * 3
    any_cache.seed_revision(4)
    any_cache.apply_write("b", stored(3, "b", enabled=False), version=3, revision=4)
    assert any_cache.fill_many(page, observed_revision=4) == [Guarded.STORED, Guarded.REFUSED, Guarded.STORED]
    entries, _ = any_cache.read_many(["a", "b", "c"])
    assert {key: entry.version for key, entry in entries.items()} == {"a": 1, "b": 3, "c": 1}
    assert entries["a"].flag == stored(1, "a") and entries["b"].flag.definition.enabled is False


def test_fill_many_is_refused_whole_once_a_write_was_applied_after_the_reader_looked(any_cache: Any) -> None:
    any_cache.seed_revision(1)
    any_cache.apply_write("other", stored(1, "other"), version=1, revision=2)
    assert any_cache.fill_many([stored(1, "a"), stored(1, "b")], observed_revision=1) == [Guarded.REFUSED] * 2
    assert any_cache.read_many(["a", "b"])[0] == {}


def test_fill_many_of_a_page_larger_than_one_script_call_fills_every_flag(
    any_cache: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_cache_module, "FILL_BATCH_BYTES", 1)  # every flag its own call (the fake has none)
    any_cache.seed_revision(1)
    page = [stored(1, f"k{index}") for index in range(5)]
    assert any_cache.fill_many(page, observed_revision=1) == [Guarded.STORED] * 5
    assert sorted(any_cache.read_many([flag.key for flag in page])[0]) == [flag.key for flag in page]


def test_fill_many_of_an_empty_page_is_nothing(any_cache: Any) -> None:
    assert any_cache.fill_many([], observed_revision=1) == []


def test_apply_needs_the_revision_copy(any_cache: Any) -> None:
    assert any_cache.apply_write("checkout", stored(1), version=1, revision=1) is Guarded.NO_REVISION


def test_stats_are_counted_and_flushed(any_cache: Any) -> None:
    any_cache.count("a", hit=True)
    any_cache.count("a", hit=True)
    any_cache.count("b", hit=False)
    any_cache.flush_stats()
    hits, misses, since = any_cache.stats()
    assert hits == {"a": 2} and misses == {"b": 1} and since


def test_counts_wait_for_a_flush_and_the_stats_read_includes_its_own(any_cache: Any) -> None:
    any_cache.count("a", hit=True)
    any_cache.read("a")
    other = any_cache.stats()
    any_cache.count("a", hit=False)
    hits, misses, _ = any_cache.stats()
    assert other[0] == {"a": 1} and hits == {"a": 1} and misses == {"a": 1}


def test_entries_keep_float_values(any_cache: Any) -> None:
    definition = FlagDefinition.model_validate(
        {"key": "f", "enabled": True, "variants": {"a": 1.0, "b": 2.0}, "defaultVariant": "a", "offVariant": "b"}
    )
    flag = StoredFlag(definition=definition, version=1, updated_at=datetime(2026, 1, 2, tzinfo=UTC))
    any_cache.seed_revision(1)
    any_cache.fill("f", flag, version=1, observed_revision=1)
    assert type(any_cache.read("f").entry.flag.definition.variants["a"]) is float


@pytest.fixture(params=sorted(DUALS))
def dual_cache(request: pytest.FixtureRequest) -> DualWriteCache:
    return DualWriteCache(*(real_cache(request, fixture) for fixture in DUALS[request.param]))


def test_every_write_step_reaches_both_real_caches(dual_cache: DualWriteCache) -> None:
    """The inactive cache's failures are swallowed (and repaired later), so the contract above alone would pass
    with a client of the wrong kind on it (a standalone client against a cluster): read each cache directly."""
    for cache in (dual_cache.active, dual_cache.inactive):  # the revision copy: the warm step seeds the inactive one
        cache.seed_revision(1)
    dual_cache.apply_write("checkout", stored(2), version=2, revision=2)
    dual_cache.fill("other", stored(1, "other"), version=1, observed_revision=2)
    dual_cache.fill_many([stored(1, "listed")], observed_revision=2)

    for cache in (dual_cache.active, dual_cache.inactive):
        assert cache.read("checkout").entry.version == 2 and cache.read("other").entry.version == 1
        assert cache.read("listed").entry.version == 1
        assert cache.signal().revision == 2
    assert dual_cache.inactive_breaker.closed and dual_cache.take_missed() is None
