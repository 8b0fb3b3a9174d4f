"""Cache-aside semantics through the handler, on in-memory fakes: outcomes, negatives, breaker, outbox."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flagservice import wiring
from flagservice.breaker import CircuitBreaker
from flagservice.cache_aside import CacheAside
from flagservice.service import FlagService
from flagservice.sync import sync_inline
from tests.apigw import BEARER, call
from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(monkeypatch: pytest.MonkeyPatch, repo: Any, cache: Any, clock: Clock) -> FlagService:
    reads = CacheAside(repo, cache, breaker=CircuitBreaker(threshold=3, cooldown=1.0, clock=clock), clock=clock)
    built = FlagService(repo, reads=sync_inline(reads, interval=float("inf")))  # syncs on suspicion only
    monkeypatch.setattr(wiring, "get_service", lambda: built)
    return built


def create(key: str = "checkout", **fields: Any) -> None:
    assert call("POST", "/admin/flags", body={"key": key, "enabled": True, **fields}, headers=BEARER).status < 300


def test_a_write_fills_the_cache_so_the_first_read_is_a_hit(svc: FlagService, repo: InMemoryFlagRepository) -> None:
    create()
    reads_before = repo.reads
    answer = call("GET", "/flags/checkout")
    assert answer.headers["x-cache"] == "HIT" and "x-flags-degraded" not in answer.headers
    assert repo.reads == reads_before


def test_a_miss_reads_postgresql_once_then_hits(svc: FlagService, repo: InMemoryFlagRepository, cache: Any) -> None:
    create()
    cache.entries.clear()
    first, second = call("GET", "/flags/checkout"), call("GET", "/flags/checkout")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert second.json == first.json


def test_a_missing_flag_is_cached_negatively_and_a_create_clears_it(
    svc: FlagService, repo: InMemoryFlagRepository, cache: Any
) -> None:
    cache.seed_revision(0)
    first, second = call("GET", "/flags/later"), call("GET", "/flags/later")
    reads = repo.reads
    third = call("GET", "/flags/later")
    assert (first.status, second.status, third.status) == (404, 404, 404)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT") and repo.reads == reads
    create("later")
    assert call("GET", "/flags/later").status == 200


def test_redis_down_reads_bypass_to_postgresql_and_the_breaker_stops_waiting(
    svc: FlagService, cache: InMemoryFlagCache, clock: Clock
) -> None:
    # Given a cached flag and Redis down
    create()
    cache.down = True
    before = cache.attempts
    # When six reads come in, each is served from PostgreSQL as a degraded BYPASS
    answers = [call("GET", "/flags/checkout") for _ in range(6)]
    assert {(a.status, a.headers["x-cache"], a.headers["x-flags-degraded"]) for a in answers} == {
        (200, "BYPASS", "true")
    }
    # Then Redis was tried once per request until the breaker opened, and not at all after
    attempts = cache.attempts
    call("GET", "/flags/checkout")
    assert attempts - before == 3 and cache.attempts == attempts  # one per request until open, then none
    # And after the cooldown one probe goes to Redis
    clock.now += 1.5
    call("GET", "/flags/checkout")
    assert cache.attempts == attempts + 1  # one probe after the cooldown


def test_a_kill_switch_flipped_while_redis_is_down_holds_when_it_returns(
    svc: FlagService, cache: InMemoryFlagCache, repo: InMemoryFlagRepository, clock: Clock
) -> None:
    create()
    cache.down = True
    assert call("PATCH", "/admin/flags/checkout", body={"enabled": False}, headers=BEARER).status == 200
    assert repo.pending_count() == 1 and cache.entries["checkout"].flag.definition.enabled is True
    cache.down = False
    svc.reads.on_suspect()  # the background sync's next pass (deployed: within a second, off the read path)
    answer = call("GET", "/flags/checkout")
    assert answer.json["enabled"] is False and answer.headers["x-cache"] == "HIT"
    assert repo.pending_count() == 0


def test_postgresql_down_serves_the_last_known_good_copy_as_stale(
    svc: FlagService, cache: InMemoryFlagCache, repo: InMemoryFlagRepository
) -> None:
    # Given a cached copy past its soft expiry and PostgreSQL down
    create()
    cache.soft_ttl = 0
    create()  # re-cached with a soft expiry already past
    repo.down = True
    # When the flag is read, the last known good copy is served as STALE
    answer = call("GET", "/flags/checkout")
    assert (answer.status, answer.headers["x-cache"], answer.headers["x-flags-degraded"]) == (200, "STALE", "true")
    # Then a flag that was never cached cannot be served
    never = call("GET", "/flags/never-seen")
    assert (never.status, never.json["errorCode"]) == (503, "SERVICE_UNAVAILABLE")


def test_a_fresh_entry_is_a_hit_while_postgresql_is_down(svc: FlagService, repo: InMemoryFlagRepository) -> None:
    create()
    repo.down = True
    answer = call("GET", "/flags/checkout")
    assert (answer.status, answer.headers["x-cache"]) == (200, "HIT") and "x-flags-degraded" not in answer.headers


def test_writes_fail_fast_with_503_while_postgresql_is_down(svc: FlagService, repo: InMemoryFlagRepository) -> None:
    repo.down = True
    answer = call("POST", "/admin/flags", body={"key": "k", "enabled": True}, headers=BEARER)
    assert (answer.status, answer.json["errorCode"]) == (503, "SERVICE_UNAVAILABLE")


def test_a_flushed_cache_refills_and_takes_its_revision_from_postgresql(
    svc: FlagService, cache: InMemoryFlagCache, repo: InMemoryFlagRepository
) -> None:
    create()
    create("other")
    cache.flush_all()
    # Given a flush, when a read finds the revision gone, then the sync re-seeds it and the read is not degraded.
    assert call("GET", "/flags/checkout").headers["x-cache"] in ("HIT", "MISS")
    assert cache.revision_copy == repo.revision() == 2
    call("GET", "/flags/checkout")
    assert call("GET", "/flags/checkout").headers["x-cache"] == "HIT"


@pytest.mark.parametrize(
    ("cache_down", "db_down", "status", "body"),
    [
        (False, False, 200, {"status": "ok", "cache": "ok", "database": "ok"}),
        (True, False, 200, {"status": "degraded", "cache": "unavailable", "database": "ok"}),
        (False, True, 200, {"status": "degraded", "cache": "ok", "database": "unavailable"}),
        (True, True, 503, {"status": "degraded", "cache": "unavailable", "database": "unavailable"}),
    ],
)
def test_health(
    svc: FlagService, cache: Any, repo: Any, cache_down: bool, db_down: bool, status: int, body: Any
) -> None:
    cache.down, repo.down = cache_down, db_down
    answer = call("GET", "/health")
    assert (answer.status, answer.json) == (status, body)


def test_stats_count_hits_and_misses_per_flag(svc: FlagService, cache: InMemoryFlagCache) -> None:
    create()
    cache.entries.clear()
    for _ in range(4):
        call("GET", "/flags/checkout")
    body = call("GET", "/admin/cache/stats", headers=BEARER).json
    assert (body["hits"], body["misses"], body["hitRate"]) == (3, 1, 0.75)
    assert body["flags"] == [{"key": "checkout", "hits": 3, "misses": 1, "hitRate": 0.75}]


def test_list_reports_miss_and_fills_entries(svc: FlagService, cache: InMemoryFlagCache) -> None:
    create("a")
    create("b")
    cache.entries.clear()
    answer = call("GET", "/flags")
    assert answer.headers["x-cache"] == "MISS" and set(cache.entries) == {"a", "b"}
    cache.down = True
    assert call("GET", "/flags").headers["x-cache"] == "BYPASS"


def test_a_stats_send_into_a_silent_redis_never_closes_the_breaker(
    svc: FlagService, cache: InMemoryFlagCache, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Redis silent (a stats send into it 'succeeds') and the breaker opened by three failures
    create()
    cache.down = True
    monkeypatch.setattr(cache, "flush_stats", lambda: None)  # a send into a dropped connection "succeeds"
    for _ in range(3):
        call("GET", "/flags/checkout")  # three failures: the breaker opens
    # When the probe after the cooldown is only the stats send
    clock.now += 1.5  # past the cooldown: the next Redis call is the one probe
    call("GET", "/admin/flags/checkout/history", headers=BEARER)  # no cache call, only the stats send
    # Then the next reads make one failed probe and no more: the send had not closed the breaker
    attempts = cache.attempts
    call("GET", "/flags/checkout")
    call("GET", "/flags/checkout")
    assert cache.attempts == attempts + 1  # one failed probe re-opened it; the send had not closed it


BULK = {"context": {"targetingKey": "u"}}


def bulk_values(answer: Any) -> dict[str, Any]:
    return {item["key"]: item["value"] for item in answer.json["flags"]}


def test_a_bulk_snapshot_never_outlives_a_write_applied_after_it(
    svc: FlagService, cache: InMemoryFlagCache, clock: Clock
) -> None:
    # Given a bulk answer with its ETag
    create("kill")
    first = call("POST", "/ofrep/v1/evaluate/flags", body=BULK)
    # When another container flips the kill switch and this one revalidates
    other = FlagService(svc.reads.repository, cache)  # another container flips the kill switch
    other.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    svc.reads.l1.clear()  # past this container's 250 ms revalidation
    # Then the conditional bulk read shows the write under a new ETag
    again = call("POST", "/ofrep/v1/evaluate/flags", body=BULK, headers={"If-None-Match": first.headers["etag"]})
    assert again.status == 200 and bulk_values(again) == {"kill": False}
    assert again.headers["etag"] != first.headers["etag"]


def test_postgresql_down_overlays_newer_entries_on_an_outdated_snapshot(
    svc: FlagService, cache: InMemoryFlagCache, repo: InMemoryFlagRepository
) -> None:
    create("kill")
    create("other")
    old = call("POST", "/ofrep/v1/evaluate/flags", body=BULK)
    other = FlagService(repo, cache)
    other.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    other.delete_flag("other", actor="oncall", if_match=None)
    # Given PostgreSQL down, when bulk is asked while the snapshot is older than the kill switch
    repo.down = True
    svc.reads.l1.clear()
    answer = call("POST", "/ofrep/v1/evaluate/flags", body=BULK)
    # Then the answer is STALE and shows the kill switch and the delete, never the older snapshot
    assert (answer.status, answer.headers["x-cache"], answer.headers["x-flags-degraded"]) == (200, "STALE", "true")
    assert bulk_values(answer) == {"kill": False}
    assert answer.headers["etag"] != old.headers["etag"]


def test_an_expired_snapshot_is_stale_while_its_refresh_fails_and_a_hit_during_a_healthy_one(
    svc: FlagService, cache: InMemoryFlagCache, repo: InMemoryFlagRepository
) -> None:
    # Given a bulk snapshot born expired
    create("a")
    cache.soft_ttl = 0
    call("POST", "/ofrep/v1/evaluate/flags", body=BULK)  # snapshot born expired
    svc.reads.l1.clear()
    # When another container holds the rebuild lease, the expired snapshot is still a HIT
    cache.leases["*"] = cache.clock() + 60  # another container holds the rebuild lease
    assert call("POST", "/ofrep/v1/evaluate/flags", body=BULK).headers["x-cache"] == "HIT"
    # Then with PostgreSQL down its failed refresh serves it as STALE
    repo.down = True
    svc.reads.l1.clear()
    answer = call("POST", "/ofrep/v1/evaluate/flags", body=BULK)
    assert (answer.headers["x-cache"], answer.headers["x-flags-degraded"]) == ("STALE", "true")


def test_a_frozen_container_revalidates_its_first_read_after_the_gap(
    svc: FlagService, cache: InMemoryFlagCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    create()
    call("GET", "/flags/checkout")
    other = FlagService(svc.reads.repository, cache)
    other.patch_flag("checkout", {"enabled": False}, actor="oncall", if_match=None)
    # Given a Lambda freeze: the monotonic clock stood still while the wall clock moved on
    frozen = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: frozen)
    wall = time.time() + 5
    monkeypatch.setattr(time, "time", lambda: wall)
    # Then the first read after the thaw revalidates and sees the write
    assert call("GET", "/flags/checkout").json["enabled"] is False
