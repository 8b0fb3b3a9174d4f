"""The in-process cache: served without Redis while validated, revalidated after 250 ms, bounded by max age."""

from __future__ import annotations

from typing import Any

import pytest

from flagservice import wiring
from flagservice.cache_aside import CacheAside
from flagservice.l1 import L1Cache
from flagservice.service import FlagService
from flagservice.sync import sync_inline
from tests.apigw import BEARER, call
from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_are_kept_while_the_revision_holds_and_dropped_when_it_moves() -> None:
    # Given an entry cached at revision 7
    clock = Clock()
    l1: L1Cache[str] = L1Cache(max_age=1.0, clock=clock)
    l1.observe(7)
    l1.put("a", "A")
    # When it is due for validation, it is still served; the same revision keeps it
    clock.now += 0.3
    assert l1.needs_validation and l1.get("a") == (True, "A")
    l1.observe(7)
    assert not l1.needs_validation and l1.get("a") == (True, "A")
    # Then a newer revision drops it
    l1.observe(8)
    assert l1.get("a") == (False, None)


def test_an_entry_is_never_served_older_than_max_age() -> None:
    # Given an entry cached at revision 1
    clock = Clock()
    l1: L1Cache[str] = L1Cache(max_age=1.0, clock=clock)
    l1.observe(1)
    l1.put("a", "A")
    # When it is older than max_age, even an unchanged revision does not keep it
    clock.now += 1.01
    l1.observe(1)
    assert l1.get("a") == (False, None)


def test_nothing_is_kept_without_a_revision_to_validate_against() -> None:
    l1: L1Cache[str] = L1Cache(max_age=1.0)
    l1.observe(None)
    l1.put("a", "A")
    assert len(l1) == 0


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Any:
    clock = Clock()
    repo, cache = InMemoryFlagRepository(), InMemoryFlagCache()
    reads = CacheAside(repo, cache, l1=L1Cache(max_age=1.0, clock=clock), clock=clock)
    service = FlagService(repo, reads=sync_inline(reads))
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    call("POST", "/admin/flags", body={"key": "k", "enabled": True}, headers=BEARER)
    return clock, cache, repo


def test_a_validated_l1_hit_costs_no_redis_round_trip(world: Any) -> None:
    clock, cache, _ = world
    call("GET", "/flags/k")
    trips = cache.calls
    for _ in range(5):
        assert call("GET", "/flags/k").headers["x-cache"] == "HIT"
    assert cache.calls == trips


def test_after_250_ms_one_revision_check_and_a_write_elsewhere_is_seen(world: Any) -> None:
    clock, cache, repo = world
    call("GET", "/flags/k")
    other = FlagService(repo, cache)  # another container writes
    other.patch_flag("k", {"enabled": False}, actor="x", if_match=None)
    assert call("GET", "/flags/k").json["enabled"] is True  # validated < 250 ms ago: allowed
    clock.now += 0.26
    assert call("GET", "/flags/k").json["enabled"] is False


def test_a_redis_failure_flushes_the_l1(world: Any) -> None:
    clock, cache, _ = world
    call("GET", "/flags/k")
    cache.down = True
    clock.now += 0.26
    assert call("GET", "/flags/k").headers["x-cache"] == "BYPASS"


def test_warm_loads_the_most_read_flags_without_the_database(world: Any) -> None:
    clock, cache, repo = world
    for key in ["a", "b"]:
        call("POST", "/admin/flags", body={"key": key, "enabled": True}, headers=BEARER)
    cache.hits.update({"a": 5, "b": 3, "k": 1})
    fresh = CacheAside(repo, cache, l1=L1Cache(max_age=1.0, clock=clock), clock=clock)
    reads, trips = repo.reads, cache.calls
    assert fresh.warm(limit=2) == 2
    assert repo.reads == reads and cache.calls == trips + 2
    assert fresh.l1.get("a")[0] and fresh.l1.get("b")[0] and not fresh.l1.get("k")[0]
