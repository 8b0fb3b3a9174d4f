"""Bulk reads while Redis cannot answer reuse the process's last listing (listing.py), and GET /flags fills a page
in one round trip: on in-memory fakes, through the handler where the answer matters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from flagservice import listing, wiring
from flagservice.breaker import CircuitBreaker
from flagservice.cache_aside import CacheAside
from flagservice.errors import StoreUnavailableError
from flagservice.flags.model import FlagDefinition, StoredFlag
from flagservice.listing import ListingReuse
from flagservice.service import FlagService
from flagservice.sync import sync_inline
from tests.apigw import BEARER, call
from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository

BULK = {"context": {"targetingKey": "u"}}
THREADS = 12


@pytest.fixture
def svc(monkeypatch: pytest.MonkeyPatch, repo: InMemoryFlagRepository, cache: InMemoryFlagCache) -> FlagService:
    reads = CacheAside(repo, cache, breaker=CircuitBreaker(threshold=3, cooldown=60.0))
    built = FlagService(repo, reads=sync_inline(reads, interval=float("inf")))
    monkeypatch.setattr(wiring, "get_service", lambda: built)
    return built


def create(key: str, enabled: bool = True) -> None:
    assert call("POST", "/admin/flags", body={"key": key, "enabled": enabled}, headers=BEARER).status < 300


def bulk(headers: dict[str, str] | None = None) -> Any:
    return call("POST", "/ofrep/v1/evaluate/flags", body=BULK, headers=headers or {})


def values(answer: Any) -> dict[str, Any]:
    return {item["key"]: item["value"] for item in answer.json["flags"]}


def other_container(repo: InMemoryFlagRepository) -> FlagService:
    """Another container on the same database, whose Redis is down too."""
    down = InMemoryFlagCache()
    down.down = True
    return FlagService(repo, down)


# -- through the service: Redis down --------------------------------------------------------------------


def test_repeated_bulk_reads_in_bypass_list_the_flags_once_while_the_revision_stands(
    svc: FlagService, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    create("a")
    create("b", enabled=False)
    cache.down = True
    answers = [bulk() for _ in range(5)]
    assert {a.headers["x-cache"] for a in answers} == {"BYPASS"} and {a.headers["etag"] for a in answers} == {
        answers[0].headers["etag"]
    }
    assert all(values(a) == {"a": True, "b": False} for a in answers)
    assert (repo.listings, repo.revision_reads) == (1, 5)


def test_a_write_by_another_container_is_listed_by_the_next_bulk_read(
    svc: FlagService, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    create("kill")
    cache.down = True
    first = bulk()
    other_container(repo).patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    again = bulk(headers={"If-None-Match": first.headers["etag"]})
    assert again.status == 200 and values(again) == {"kill": False} and again.headers["etag"] != first.headers["etag"]
    assert repo.listings == 2


def test_an_unchanged_conditional_bulk_read_costs_only_the_revision_read(
    svc: FlagService, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    create("a")
    etag = bulk().headers["etag"]  # a HIT: the ETag a client holds from before the outage
    cache.down = True
    svc.reads.l1.clear()  # past this container's 250 ms revalidation
    bulk()  # the first read in BYPASS lists
    listings, revision_reads = repo.listings, repo.revision_reads
    again = bulk(headers={"If-None-Match": etag})
    assert (again.status, again.headers["x-cache"], again.headers["etag"]) == (304, "BYPASS", etag)
    assert (repo.listings, repo.revision_reads) == (listings, revision_reads + 1)


def test_a_write_in_this_container_is_read_back_without_asking_whether_the_revision_moved(
    svc: FlagService, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    create("kill")
    cache.down = True
    bulk()
    assert call("PATCH", "/admin/flags/kill", body={"enabled": False}, headers=BEARER).status == 200
    asked: list[int | None] = []
    spy(repo, asked)
    assert values(bulk()) == {"kill": False} and asked == [None]


def spy(repo: InMemoryFlagRepository, asked: list[int | None]) -> None:
    real = repo.list_if_changed

    def recorded(since: int | None, *, limit: int) -> tuple[int, list[StoredFlag] | None]:
        asked.append(since)
        return real(since, limit=limit)

    repo.list_if_changed = recorded  # type: ignore[method-assign]


def test_redis_flapping_with_writes_in_between_never_serves_an_older_listing(
    svc: FlagService, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    create("kill")
    other = FlagService(repo, cache)  # another container that reaches Redis whenever it is up
    for round_ in range(4):
        cache.down = True
        assert bulk().headers["x-cache"] == "BYPASS"  # this read keeps a listing at the current revision
        cache.down = False
        other.patch_flag("kill", {"enabled": round_ % 2 == 1}, actor="oncall", if_match=None)
        cache.down = True
        assert values(bulk()) == {"kill": round_ % 2 == 1}


def test_postgresql_down_too_still_overlays_the_last_snapshot_of_an_untrusted_redis(
    svc: FlagService, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    create("kill")
    bulk()  # the snapshot
    cache.down = True
    svc.reads.l1.clear()
    bulk()  # a listing held
    other_container(repo).patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    cache.down = False
    cache.apply_write("kill", repo.get("kill"), version=2, revision=2)  # the other container's replay landed
    repo.down = True
    svc.reads.distrust()  # Redis came back: untrusted until a sync pass, which cannot run without PostgreSQL
    answer = bulk()
    assert (answer.status, answer.headers["x-cache"]) == (200, "STALE") and values(answer) == {"kill": False}


def test_both_stores_down_is_503_as_before(
    svc: FlagService, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    create("a")
    cache.down = True
    bulk()
    repo.down = True
    assert bulk().status == 503


# -- the reuse itself: single flight, join window, bounded waits ------------------------------------------


class GatedSource:
    """A repository whose listing call blocks until released (a slow or hung database)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[int | None] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = fail
        self.revision = 7

    def list_if_changed(self, since: int | None, *, limit: int) -> tuple[int, list[StoredFlag] | None]:
        self.calls.append(since)
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise StoreUnavailableError("the database did not answer in time")
        return (self.revision, None) if since == self.revision else (self.revision, [flag("a", self.revision)])


def flag(key: str, version: int) -> StoredFlag:
    definition = FlagDefinition.model_validate({"key": key, "enabled": True})
    return StoredFlag(definition=definition, version=version, updated_at=datetime(2026, 1, 2, tzinfo=UTC))


class CountingReuse(ListingReuse):
    """Counts reads that found their database call (joined one or began one), so a test releases the call only
    once every concurrent read is waiting on it."""

    def __init__(self) -> None:
        super().__init__(limit=100)
        self.joined = 0

    def _join(self) -> Any:
        found = super()._join()
        self.joined += 1
        return found


def concurrently(count: int, reuse: CountingReuse, source: GatedSource) -> list[Any]:
    """`count` threads read at once while the database call is held; what each returned or raised."""
    results: list[Any] = [None] * count

    def one(index: int) -> None:
        try:
            results[index] = reuse.current(source)
        except Exception as exc:  # noqa: BLE001 - returned to the test
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: reuse.joined == count)
    source.release.set()
    for thread in threads:
        thread.join(5)
    return results


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    return condition()


def test_concurrent_reads_share_one_database_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "JOIN_SECONDS", 30.0)  # a loaded machine may start the threads slowly
    source, reuse = GatedSource(), CountingReuse()
    results = concurrently(THREADS, reuse, source)
    assert len(source.calls) == 1 and all(r[0] == 7 and r[1][0].key == "a" for r in results)


def test_a_read_never_joins_a_call_that_began_longer_ago_than_the_join_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "JOIN_SECONDS", -1.0)  # every call in flight is "too old" to join
    source = GatedSource()
    concurrently(3, CountingReuse(), source)
    assert len(source.calls) == 3


def test_a_joining_read_waits_for_a_hung_call_no_longer_than_for_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "FOLLOW_SECONDS", 0.05)
    source, reuse = GatedSource(), ListingReuse(limit=100)
    leader = threading.Thread(target=lambda: reuse.current(source))
    leader.start()
    assert source.entered.wait(5)
    with pytest.raises(StoreUnavailableError):
        reuse.current(source)  # joined the hung call, gave up after FOLLOW_SECONDS
    source.release.set()
    leader.join(5)
    assert len(source.calls) == 1


def test_a_failed_call_fails_every_read_that_joined_it_as_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "JOIN_SECONDS", 30.0)
    source = GatedSource(fail=True)
    results = concurrently(4, CountingReuse(), source)
    assert all(isinstance(r, StoreUnavailableError) for r in results) and len(source.calls) == 1


def test_a_listing_read_across_a_local_write_is_not_kept() -> None:
    source, reuse = GatedSource(), ListingReuse(limit=100)
    reader = threading.Thread(target=lambda: reuse.current(source))
    reader.start()
    assert source.entered.wait(5)
    reuse.clear()  # a write committed in this process while the listing was in flight
    source.release.set()
    reader.join(5)
    reuse.current(source)
    assert source.calls == [None, None]  # the second read listed afresh: nothing from before the write was kept


def test_an_unchanged_revision_serves_the_held_listing() -> None:
    source, reuse = GatedSource(), ListingReuse(limit=100)
    source.release.set()
    first, second = reuse.current(source), reuse.current(source)
    assert source.calls == [None, 7] and second is first


# -- GET /flags: one round trip per page --------------------------------------------------------------


def test_a_listed_page_is_filled_in_one_round_trip(svc: FlagService, cache: InMemoryFlagCache) -> None:
    for key in ("a", "b", "c", "d"):
        create(key)
    cache.entries.clear()
    calls = cache.calls
    page = call("GET", "/flags", query={"limit": "3"})
    assert page.status == 200 and [f["key"] for f in page.json["flags"]] == ["a", "b", "c"]
    assert cache.calls - calls == 2  # the signal, then one fill of the page
    assert sorted(cache.entries) == ["a", "b", "c"]


# -- an event's re-fetch (flagConfigEtag) never gets a listing older than the event --------------------------


def test_an_event_refetch_never_joins_a_listing_taken_before_the_events_commit(
    monkeypatch: pytest.MonkeyPatch, repo: InMemoryFlagRepository, cache: InMemoryFlagCache
) -> None:
    """CONTRACT.md section 5: a bulk request carrying `flagConfigEtag` is answered from a flag set at least as
    new as that revision. A read in flight in this process that listed before the event's write committed
    (its statement ran first, its answer is still on its way) is younger than the join window, yet older
    than the revision the re-fetch asks for."""
    monkeypatch.setattr(listing, "JOIN_SECONDS", 30.0)  # the window, however slowly this machine runs
    FlagService(repo, cache).put_flag(
        FlagDefinition.model_validate({"key": "kill", "enabled": True}), actor="t", if_match=None
    )
    cache.down = True
    reads = CacheAside(repo, cache, breaker=CircuitBreaker(threshold=3, cooldown=60.0))
    joined, release = threading.Event(), threading.Event()
    real = repo.list_if_changed

    def listed_before_the_write(since: int | None, *, limit: int) -> tuple[int, list[StoredFlag] | None]:
        answer = real(since, limit=limit)  # the statement ran now...
        release.wait(10)  # ...its rows are still on their way
        return answer

    repo.list_if_changed = listed_before_the_write  # type: ignore[method-assign]
    earlier = threading.Thread(target=reads.all_flags)
    earlier.start()
    assert wait_for(lambda: repo.revision_reads == 1)
    repo.list_if_changed = real  # type: ignore[method-assign]
    written = other_container(repo).patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    real_join = reads.listings._join

    def join_then_release(*args: Any, **kwargs: Any) -> Any:
        found = real_join(*args, **kwargs)
        joined.set()
        return found

    monkeypatch.setattr(reads.listings, "_join", join_then_release)
    threading.Timer(0.0, lambda: joined.wait(10) and release.set()).start()
    refetch = reads.all_flags(at_least=written.revision)
    earlier.join(5)
    assert refetch.revision >= written.revision and [f.definition.enabled for f in refetch.flags] == [False]
