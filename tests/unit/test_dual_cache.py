"""The dual-write cache of a blue/green move, its inactive cache's repair and the warm step, on the fakes.

Every cache step goes to both caches, reads come from the active one only; the inactive cache failing
never fails a read or a write, never stops the active cache's outbox bookkeeping, and whatever it
missed is replayed by its own repair pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from flagservice import wiring
from flagservice.cache_aside import CacheAside
from flagservice.cache_move import inactive_sync, warm_cache
from flagservice.dual_cache import DualWriteCache
from flagservice.flags.model import FlagDefinition
from flagservice.ports import CacheOutcome
from flagservice.service import FlagService
from flagservice.settings import SettingsError, load_settings
from tests.apigw import BEARER, call
from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository

BASE = {"REDIS_URL": "redis://127.0.0.1:6380/0", "DATABASE_URL": "postgresql://u@127.0.0.1:5433/db"}


@pytest.fixture
def repo() -> InMemoryFlagRepository:
    return InMemoryFlagRepository()


@pytest.fixture
def active() -> InMemoryFlagCache:
    return InMemoryFlagCache()


@pytest.fixture
def inactive() -> InMemoryFlagCache:
    return InMemoryFlagCache()


@pytest.fixture
def dual(active: InMemoryFlagCache, inactive: InMemoryFlagCache) -> DualWriteCache:
    return DualWriteCache(active, inactive)


@pytest.fixture
def svc(repo: InMemoryFlagRepository, dual: DualWriteCache) -> FlagService:
    return FlagService(repo, reads=CacheAside(repo, dual))


def put(svc: FlagService, key: str = "checkout", *, enabled: bool = True) -> int:
    definition = FlagDefinition.model_validate({"key": key, "enabled": enabled})
    with svc.request():
        return svc.put_flag(definition, actor="test", if_match=None).version


def cached_version(cache: InMemoryFlagCache, key: str = "checkout") -> int | None:
    entry = cache.entries.get(key)
    return entry.version if entry is not None else None


def seed_both(*caches: InMemoryFlagCache, revision: int = 0) -> None:
    for cache in caches:
        cache.seed_revision(revision)


def test_a_write_reaches_both_caches_and_reads_come_from_the_active_one_only(
    svc: FlagService, active: InMemoryFlagCache, inactive: InMemoryFlagCache
) -> None:
    # Given two seeded caches and a flag written through the service
    seed_both(active, inactive)
    version = put(svc)

    # When the flag is read (outside a request scope: its end sends the stats counts to both caches)
    before = inactive.attempts
    lookup = svc.get_flag("checkout")

    # Then both caches hold the write and the read asked only the active one
    assert cached_version(active) == cached_version(inactive) == version
    assert lookup.outcome is CacheOutcome.HIT and inactive.attempts == before


def test_the_inactive_cache_down_fails_no_read_or_write_and_the_active_outbox_is_kept_exact(
    svc: FlagService, repo: InMemoryFlagRepository, active: InMemoryFlagCache, inactive: InMemoryFlagCache
) -> None:
    # Given the inactive cache down
    seed_both(active, inactive)
    inactive.down = True

    # When a flag is written and read
    version = put(svc, enabled=False)
    with svc.request():
        lookup = svc.get_flag("checkout")

    # Then both answered, the active cache took the write and its outbox row is done, as with one cache
    assert lookup.flag.definition.enabled is False and lookup.outcome is CacheOutcome.HIT
    assert cached_version(active) == version
    assert repo.pending_outbox(limit=10) == []


def test_the_inactive_breaker_stops_every_wait_after_two_failures(
    svc: FlagService, active: InMemoryFlagCache, inactive: InMemoryFlagCache
) -> None:
    seed_both(active, inactive)
    inactive.down = True
    before = inactive.attempts

    for index in range(5):
        put(svc, f"flag-{index}")

    assert inactive.attempts - before == 2


def test_a_write_the_inactive_cache_missed_is_replayed_even_after_a_later_write_raised_its_revision(
    svc: FlagService, repo: InMemoryFlagRepository, dual: DualWriteCache, inactive: InMemoryFlagCache
) -> None:
    # Given a kill switch the inactive cache missed, then a later write it took (its revision is current)
    seed_both(dual.active, inactive)  # type: ignore[arg-type]
    put(svc)
    inactive.down = True
    killed = put(svc, enabled=False)
    inactive.down = False
    dual.inactive_breaker.record_success()
    put(svc, "other")
    assert cached_version(inactive) == killed - 1 and inactive.revision_copy == repo.revision()

    # When its repair pass runs
    assert inactive_sync(repo, dual).run_once()

    # Then it holds the kill switch
    assert cached_version(inactive) == killed
    assert inactive.entries["checkout"].flag.definition.enabled is False  # type: ignore[union-attr]


def test_the_inactive_repair_never_marks_rows_the_active_cache_still_owes(
    svc: FlagService, repo: InMemoryFlagRepository, active: InMemoryFlagCache, inactive: InMemoryFlagCache
) -> None:
    # Given a write whose active cache step failed (its row stays pending) while the inactive one was behind
    seed_both(active, inactive)
    active.down = True
    inactive.revision_copy = None  # a new, empty cache
    put(svc)
    dual = svc.reads.cache
    assert isinstance(dual, DualWriteCache)

    # When the inactive cache's repair runs
    assert inactive_sync(repo, dual).run_once()

    # Then the inactive cache has the write and the row still waits for the active cache
    assert cached_version(inactive) == 1
    assert [row.key for row in repo.pending_outbox(limit=10)] == ["checkout"]


def test_warm_fills_an_empty_cache_with_every_flag_at_the_current_revision(
    repo: InMemoryFlagRepository, active: InMemoryFlagCache
) -> None:
    # Given flags written while only the old cache existed
    old = FlagService(repo, reads=CacheAside(repo, active))
    versions = {key: put(old, key) for key in ("a", "b", "c")}
    put(old, "b", enabled=False)
    new = InMemoryFlagCache()

    # When the new cache is warmed
    report = warm_cache(repo, new)

    # Then it holds every flag at PostgreSQL's version, the key set and the bulk snapshot at its revision
    assert (report.flags, report.stored, report.behind) == (3, 3, [])
    assert {key: cached_version(new, key) for key in versions} == {"a": 1, "b": 2, "c": 1}
    assert new.revision_copy == repo.revision() and new.snapshot is not None
    assert new.snapshot.version == repo.revision()


def test_warm_never_puts_back_a_version_older_than_a_write_landing_meanwhile(
    repo: InMemoryFlagRepository, dual: DualWriteCache, active: InMemoryFlagCache, inactive: InMemoryFlagCache
) -> None:
    # Given a flag, and a write of it that lands between the warm step's listing and its fills
    svc = FlagService(repo, reads=CacheAside(repo, dual))
    seed_both(active, inactive)
    put(svc)
    listed = repo.list_at_revision

    def list_then_write(*, limit: int) -> Any:
        answer = listed(limit=limit)
        repo.list_at_revision = listed  # type: ignore[method-assign]
        put(svc, enabled=False)
        return answer

    repo.list_at_revision = list_then_write  # type: ignore[method-assign]

    # When the inactive cache is warmed
    report = warm_cache(repo, inactive)

    # Then it holds the later write
    assert cached_version(inactive) == 2 and report.behind == []
    assert inactive.entries["checkout"].flag.definition.enabled is False  # type: ignore[union-attr]


def test_reads_come_from_the_secondary_when_asked() -> None:
    settings = load_settings(
        {**BASE, "REDIS_SECONDARY_URL": "redis://127.0.0.1:6390/0", "REDIS_READ_FROM": "secondary"}
    )

    cache = wiring.build_flag_cache(settings)

    assert isinstance(cache, DualWriteCache)
    ports = [c._client.connection_pool.connection_kwargs["port"] for c in (cache.active, cache.inactive)]  # type: ignore[attr-defined]
    assert ports == [6390, 6380]


def test_without_a_secondary_there_is_one_cache() -> None:
    assert not isinstance(wiring.build_flag_cache(load_settings(BASE)), DualWriteCache)


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"REDIS_READ_FROM": "secondary"}, "REDIS_SECONDARY_URL"),
        ({"REDIS_READ_FROM": "both"}, "REDIS_READ_FROM"),
        ({"REDIS_SECONDARY_URL": "http://x"}, "REDIS_SECONDARY_URL"),
        ({"REDIS_SECONDARY_URL": BASE["REDIS_URL"]}, "REDIS_SECONDARY_URL"),
        ({"REDIS_SECONDARY_CACHE_NAME": "flags-dev-cache-2"}, "REDIS_SECONDARY_CACHE_NAME"),
        (
            {
                "REDIS_URL": "rediss://a:6379",
                "REDIS_IAM_USER": "u",
                "REDIS_CACHE_NAME": "flags-dev-cache-1",
                "REDIS_SECONDARY_URL": "rediss://b:6379",
            },
            "REDIS_SECONDARY_CACHE_NAME",
        ),  # fmt: skip
        (
            {
                "REDIS_URL": "rediss://a:6379",
                "REDIS_IAM_USER": "u",
                "REDIS_CACHE_NAME": "flags-dev-cache-1",
                "REDIS_SECONDARY_URL": "redis://b:6379",
                "REDIS_SECONDARY_CACHE_NAME": "flags-dev-cache-2",
            },
            "REDIS_SECONDARY_URL",
        ),  # fmt: skip
    ],
)
def test_an_incomplete_move_refuses_to_start_with_one_line_naming_the_variable(
    override: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({**BASE, **override})
    assert variable in str(error.value) and "\n" not in str(error.value)


def test_the_warm_route_needs_admin_credentials_and_fills_the_inactive_cache(
    monkeypatch: pytest.MonkeyPatch, repo: InMemoryFlagRepository, dual: DualWriteCache, inactive: InMemoryFlagCache
) -> None:
    # Given a service mid-move with one flag the inactive cache lacks
    service = FlagService(repo, reads=CacheAside(repo, dual))
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    inactive.down = True
    put(service)
    inactive.down = False

    # When the warm route is called without, then with, the admin token
    refused = call("POST", "/admin/cache/warm")
    warmed = call("POST", "/admin/cache/warm", headers=BEARER)

    # Then only the second one warmed, and the inactive cache holds the flag
    assert (refused.status, refused.json["errorCode"]) == (401, "UNAUTHORIZED")
    assert warmed.status == 200 and warmed.json["stored"] == 1 and warmed.json["behind"] == 0
    assert cached_version(inactive) == 1


def test_the_warm_route_answers_503_when_the_cache_to_warm_is_down(
    monkeypatch: pytest.MonkeyPatch, repo: InMemoryFlagRepository, dual: DualWriteCache, inactive: InMemoryFlagCache
) -> None:
    monkeypatch.setattr(wiring, "get_service", lambda: FlagService(repo, reads=CacheAside(repo, dual)))
    inactive.down = True

    answer = call("POST", "/admin/cache/warm", headers=BEARER)

    assert (answer.status, answer.json["errorCode"]) == (503, "SERVICE_UNAVAILABLE")
