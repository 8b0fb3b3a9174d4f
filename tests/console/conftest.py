"""The console in headless Chromium against the real local server (tests/console/stack.py).

One server and one Chromium for this package (both stopped when its tests are done, so no other suite
shares Playwright's event loop); a new browser context per test, signed in, so sessionStorage never leaks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bench.consistency.browser import chromium
from tests.console.cognito_stand_in import StandIn, serve
from tests.console.stack import EXPECT_TIMEOUT_MS, ConsoleServer, open_console, running_server

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="package")
def server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    with running_server(postgres_url, tmp_path_factory.mktemp("console-server")) as running:
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture
def console(browser: Browser, server: ConsoleServer, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """The console at 1280x800, signed in; on failure, a screenshot and the server's output are printed."""
    page = open_console(browser, server)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot: {tmp_path / 'failure.png'}\nserver output:\n{server.output()}")
    page.context.close()
    assert errors == [], f"the page threw: {errors}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so a fixture can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    """The deployed sign-in's stand-in (hosted UI, identity pool, IAM-checking gateway), one per test module."""
    state = StandIn()
    server = serve(state)
    yield state
    server.shutdown()
    server.server_close()
