"""Fixtures shared by every tier: settings in the environment, the service on a fake or a real store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import flagservice.handler  # noqa: F401 - imported before unit tests disable sockets (X-Ray opens a UDP socket)
from flagservice import wiring
from flagservice.service import FlagService
from tests.apigw import ADMIN_TOKEN
from tests.fakes import InMemoryFlagRepository


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
    """The handler's service, on the in-memory repository."""
    service = FlagService(fake_repository)
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    return service


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real PostgreSQL for the session (TEST_DATABASE_URL reuses a running one), migrated."""
    import os

    from flagservice.adapters.migrations import migrate

    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        migrate(given)
        yield given
        return
    from tests.servers import start_test_postgres

    server = start_test_postgres()
    try:
        migrate(server.url)
        yield server.url
    finally:
        server.stop()


def clean_database(url: str) -> None:
    """Empty every table and restart the revision, so each test starts from nothing."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE flags, flag_audit, cache_outbox; ALTER SEQUENCE flag_revision RESTART")


@pytest.fixture
def postgres_repository(postgres_url: str) -> Iterator[object]:
    from flagservice.adapters.postgres_repository import PostgresFlagRepository

    clean_database(postgres_url)
    repository = PostgresFlagRepository.connect(postgres_url)
    yield repository
    repository.close()


@pytest.fixture(params=["fake", "real"])
def repository(request: pytest.FixtureRequest) -> object:
    """The same assertions against the in-memory fake and the real PostgreSQL adapter."""
    if request.param == "fake":
        return InMemoryFlagRepository()
    return request.getfixturevalue("postgres_repository")


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, repository: object) -> FlagService:
    """The handler's service on the parametrized repository."""
    built = FlagService(repository)  # type: ignore[arg-type]
    monkeypatch.setattr(wiring, "get_service", lambda: built)
    return built
