"""The console live through the push channel (issue 18 item 4, deployed): its local stand-in, in headless Chromium.

The server runs with DEV_EVENTS=channel on a stand-in this module starts itself (local/channel.py, fixed ports, so it
can be stopped and started again as AppSync's side of a dropped connection); the console asks
`GET /admin/event-streams` for the channel's URL and token, with the admin credential only (no API key), and follows
it through the adapter. Flags are written "elsewhere" through the admin API, as in test_console.py.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from local.embedded import free_port
from tests.console.stack import REPO, ConsoleServer, open_console, running_server
from tests.console.test_console import LIVE_DEADLINE_SECONDS, switch_of

pytestmark = [pytest.mark.real, pytest.mark.timeout(180)]
# Correctness deadlines after an outage, with margin: the adapter's backoff (<= 2 s) or the console's wait before
# it asks for a fresh URL (5 s), then one list read.
RECONNECT_DEADLINE_MS = 20_000
LIVE = "[data-live]"


@dataclass
class StandIn:
    """The push channel's stand-in (`python -m local.channel`) on fixed ports, stopped and started by pid."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    publish_port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        ports = ["--port", str(self.port), "--publish-port", str(self.publish_port)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.channel", *ports], cwd=REPO, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "listening <port> <publish port>", or EOF if it failed
        assert line.split() == ["listening", str(self.port), str(self.publish_port)], line

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(10)

    def settings(self) -> dict[str, str]:
        """The server's settings: DEV_EVENTS=channel on this stand-in (docs/local.md: both URLs given)."""
        return {
            "DEV_EVENTS": "channel", "PUSH_TOKEN_SECRET": self.env["PUSH_TOKEN_SECRET"],
            "FLAGS_ENV": self.env["FLAGS_ENV"],
            "PUSH_CHANNEL_URL": f"ws://127.0.0.1:{self.port}/event/realtime",
            "PUSH_PUBLISH_URL": f"http://127.0.0.1:{self.publish_port}/event",
        }  # fmt: skip


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'runtime'}:{REPO}", "PUSH_TOKEN_SECRET": secrets.token_urlsafe(32),
           "FLAGS_ENV": f"channel{uuid.uuid4().hex[:6]}"}  # fmt: skip
    running = StandIn(env)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel_server(
    postgres_url: str, stand_in: StandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleServer]:
    with running_server(postgres_url, tmp_path_factory.mktemp("channel-server"), stand_in.settings()) as running:
        yield running


@pytest.fixture
def stand_in_running(stand_in: StandIn) -> Iterator[StandIn]:
    """The stand-in, started again after a test that stopped it (even a failed one)."""
    yield stand_in
    if stand_in.process is None or stand_in.process.poll() is not None:
        stand_in.start()


def opened(browser: Browser, server: ConsoleServer, request: pytest.FixtureRequest, **kwargs: Any) -> Page:
    page = open_console(browser, server, **kwargs)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    request.addfinalizer(lambda: _close(page, server, request, errors))
    return page


def _close(page: Page, server: ConsoleServer, request: pytest.FixtureRequest, errors: list[str]) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"server output:\n{server.output()}")
    page.context.close()
    assert errors == [], f"the page threw: {errors}"


def test_the_admin_route_answers_the_channel_with_a_token(channel_server: ConsoleServer, stand_in: StandIn) -> None:
    answer = channel_server.admin("GET", "/admin/event-streams")

    (stream,) = answer.json()["eventStreams"]
    assert stream["url"].startswith(f"ws://127.0.0.1:{stand_in.port}/event/realtime?") and "token=v1." in stream["url"]
    assert channel_server.http.get(f"{channel_server.url}/admin/event-streams", timeout=10).status_code == 401


def test_a_change_made_elsewhere_appears_within_two_seconds_through_the_channel(
    browser: Browser, channel_server: ConsoleServer, stand_in_running: StandIn, request: pytest.FixtureRequest
) -> None:
    key = channel_server.create_flag("channel")["key"]
    console = opened(browser, channel_server, request)
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "true")
    expect(console.locator(LIVE)).to_have_attribute("data-live", "on")  # no SSE stream here: only the channel

    began = time.monotonic()
    channel_server.patch(key, {"enabled": False})
    left = LIVE_DEADLINE_SECONDS - (time.monotonic() - began)
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "false", timeout=left * 1000)


def test_after_the_channel_restarts_the_console_reconnects_and_catches_up(
    browser: Browser, channel_server: ConsoleServer, stand_in_running: StandIn, request: pytest.FixtureRequest
) -> None:
    key = channel_server.create_flag("restart")["key"]
    console = opened(browser, channel_server, request)
    expect(console.locator(LIVE)).to_have_attribute("data-live", "on")

    stand_in_running.stop()
    expect(console.locator(LIVE)).to_have_attribute("data-live", "off")
    channel_server.patch(key, {"enabled": False})  # its message is lost: nobody listens, the post fails
    stand_in_running.start()

    expect(console.locator(LIVE)).to_have_attribute("data-live", "on", timeout=RECONNECT_DEADLINE_MS)
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "false", timeout=RECONNECT_DEADLINE_MS)
    began = time.monotonic()
    channel_server.patch(key, {"enabled": True})  # and live again, not just caught up once
    left = LIVE_DEADLINE_SECONDS - (time.monotonic() - began)
    expect(switch_of(console, key)).to_have_attribute("aria-checked", "true", timeout=left * 1000)


def test_a_refused_token_makes_the_console_ask_for_a_fresh_url_and_catch_up(
    browser: Browser, channel_server: ConsoleServer, stand_in_running: StandIn, request: pytest.FixtureRequest
) -> None:
    """The first URL's token is forged (as an expired or rotated one would be refused): the channel says
    connection_error, the adapter closes, and the console asks the admin route again."""
    key = channel_server.create_flag("refused")["key"]
    asked: list[str] = []

    def forge_first(route: Route) -> None:
        answer = route.fetch()
        body = answer.text()
        if not asked:
            body = body.replace("token=v1.", "token=v1.9", 1)  # another expiry: the MAC no longer matches
        asked.append(body)
        route.fulfill(response=answer, body=body)

    def prepare(context: BrowserContext) -> None:
        context.route("**/admin/event-streams", forge_first)

    console = opened(browser, channel_server, request, prepare=prepare)
    expect(console.locator(LIVE)).to_have_text("Reconnecting…")  # refused: the console waits, then asks again
    channel_server.patch(key, {"enabled": False})  # while the console is not live

    expect(switch_of(console, key)).to_have_attribute("aria-checked", "false", timeout=RECONNECT_DEADLINE_MS)
    expect(console.locator(LIVE)).to_have_attribute("data-live", "on")
    assert len(asked) >= 2 and "token=v1.9" in asked[0] and asked[0] != asked[1]


def test_the_console_page_allows_the_channels_origin(channel_server: ConsoleServer, stand_in: StandIn) -> None:
    policy = channel_server.http.get(channel_server.console_url, timeout=10).headers["Content-Security-Policy"]

    assert f"connect-src 'self' ws://127.0.0.1:{stand_in.port};" in policy


def test_the_adapter_is_served_as_a_console_asset_from_its_one_file(channel_server: ConsoleServer) -> None:
    answer = channel_server.http.get(f"{channel_server.console_url}/flag-channel.js", timeout=10)

    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/javascript")
    assert answer.content == (REPO / "runtime/flagservice/console/static/flag-channel.js").read_bytes()
    assert not (REPO / "web" / "flag-channel.js").exists()  # no second copy to drift
    assert Path(REPO / "tests/browser/page/main.js").read_text().count("console/static/flag-channel.js") == 1
