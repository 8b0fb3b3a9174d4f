"""A real browser on the local server: the page built once per session, Chromium once, one stack per module.

The harness is bench/consistency/browser/ (the bench runs the same flow, longer). The stack's Redis is its own (the
outage test kills it); its PostgreSQL database is new on the session's server, and dropped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser

from bench.consistency.browser import ProbePage, Stack, StaticSite, build_page, chromium, running_stack
from flagservice.adapters.migrations import migrate
from tests.servers import create_database, redis_for_tests


@pytest.fixture(scope="session")
def page_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    """The bundled page on its own origin (a static server on another port than any service)."""
    site = StaticSite(build_page(tmp_path_factory.mktemp("browser-page")))
    yield site
    site.close()


@pytest.fixture(scope="package")  # closed when this package is done: one Playwright at a time (tests/console)
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def _drop_database(postgres_url: str, url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'.encode())


@pytest.fixture(scope="module")
def stack(
    postgres_url: str, page_site: StaticSite, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Two local servers (the page's, and one to write while it is down) on an own Redis and a new database."""
    yield from new_stack(postgres_url, page_site, browser, tmp_path_factory, channel=False)


def new_stack(
    postgres_url: str,
    page_site: StaticSite,
    browser: Browser,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    channel: bool,
) -> Iterator[Stack]:
    redis, database_url = redis_for_tests(), create_database(postgres_url)
    migrate(database_url)
    workdir = tmp_path_factory.mktemp("stack")
    try:
        with running_stack(redis, database_url, page_site, browser, workdir, channel=channel) as running:
            try:
                yield running
            finally:
                redis = running.redis  # the outage test restarted it
    finally:
        redis.stop()
        _drop_database(postgres_url, database_url)


@pytest.fixture
def flag(stack: Stack) -> str:
    """A new boolean flag, enabled (the page's value starts true)."""
    return stack.create_flag(enabled=True)


@pytest.fixture
def probe(stack: Stack, flag: str) -> Iterator[ProbePage]:
    """The page, ready, showing `flag`; its provider events are printed if the test fails (pytest -rA shows them)."""
    page = stack.open_probe(flag)
    yield page
    print("provider events:", page.events())
    print("changes:", page.changes())
    page.close()


def service_logs(stack: Stack) -> str:
    return "\n".join(f"--- {s.name}\n{s.log.read_text(errors='replace')[-3000:]}" for s in (stack.primary, stack.other))
