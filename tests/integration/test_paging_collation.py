"""Paging returns every flag exactly once whatever the database's collation (DESIGN.md, Reliability).

RDS creates databases in en_US.UTF-8, where "a_b" < "a-b" < "a.b" < "a0" < "aB"; byte order (C) has
"A" < "a-b" < "a.b" < "a0" < "aB" < "a_b". A page boundary compared in one and ordered in the other
skips or repeats flags. The en-US database uses ICU (no OS locale needed); a PostgreSQL built
without ICU skips that case and says so.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from flagservice import wiring
from flagservice.adapters.migrations import migrate
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.flags.model import FlagDefinition
from flagservice.ports import WriteAction
from flagservice.service import FlagService
from tests.apigw import call
from tests.conftest import unavailable_here
from tests.fakes import InMemoryFlagCache
from tests.servers import create_database

pytestmark = pytest.mark.real
KEYS = ["a-b", "a_b", "aB", "a.b", "A", "a0", "a", "ab", "Ab", "a-c", "a__", "B", "b-", "0", "9a", "Z", "z", "x"]


@pytest.fixture(scope="module", params=["C", "en-US"])
def collation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def database_url(collation: str, postgres_url: str) -> str:
    """A database of its own with that default collation ("C": the session server's initdb locale)."""
    icu = None if collation == "C" else collation
    try:
        url = create_database(postgres_url, icu_locale=icu)
    except psycopg.errors.FeatureNotSupported as exc:  # e.g. the pip-packaged PostgreSQL 16, built without ICU
        unavailable_here(f"this PostgreSQL cannot create an ICU database: {exc}")
    migrate(url)
    return url


@pytest.fixture(scope="module")
def repository(database_url: str) -> Iterator[PostgresFlagRepository]:
    repository = PostgresFlagRepository.connect(database_url)
    for key in KEYS:
        definition = FlagDefinition(key=key, enabled=True)
        repository.save(definition, action=WriteAction.CREATE, actor="test", if_match=None)
    yield repository
    repository.close()


def test_the_database_orders_keys_as_its_collation_says(
    collation: str, database_url: str, repository: PostgresFlagRepository
) -> None:
    """The premise of this module: on en-US, the database's own order is not byte order."""
    with psycopg.connect(database_url) as conn:
        default = [row[0] for row in conn.execute("SELECT key FROM flags ORDER BY key")]

    assert (default == sorted(KEYS)) is (collation == "C")


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 1000])
def test_get_flags_pages_through_every_flag_exactly_once_in_byte_order(
    monkeypatch: pytest.MonkeyPatch, repository: PostgresFlagRepository, limit: int
) -> None:
    service = FlagService(repository, InMemoryFlagCache())
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    seen: list[str] = []
    after: str | None = None
    for _ in range(len(KEYS) + 1):
        query = {"limit": str(limit), **({"after": after} if after is not None else {})}
        page = call("GET", "/flags", query=query).json
        seen += [flag["key"] for flag in page["flags"]]
        after = page["next"]
        if after is None:
            break

    assert seen == sorted(KEYS)  # Python orders str by code point: byte order for these ASCII keys


def test_paging_can_use_the_byte_order_index(database_url: str, repository: PostgresFlagRepository) -> None:
    """The repository's query (copied here) can walk flags_key_c in order instead of sorting the table."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT key FROM flags WHERE definition IS NOT NULL"
            """ AND key COLLATE "C" > coalesce('a-b'::text, '') ORDER BY key COLLATE "C" LIMIT 2"""
        ).fetchall()
    assert "flags_key_c" in " ".join(row[0] for row in plan)
