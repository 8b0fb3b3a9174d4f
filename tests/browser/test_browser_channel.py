"""Issue 17 in a real browser: the same flows as test_browser_propagation.py, with the page's provider following
the push channel through the adapter (runtime/flagservice/console/static/flag-channel.js) instead of the SSE stream.

The local servers run with DEV_EVENTS=channel: the bulk answer advertises the stand-in of the AppSync Events
channel (local/channel.py) with a token, and every write and replay is published to it by the runtime's
publish hook. Flip → seen, reconnect after a server restart → caught up, a write during a Redis outage →
seen once replayed: each within the same bounds as the SSE stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser

from bench.consistency import browser_propagation as flow
from bench.consistency.browser import ProbePage, Stack, StaticSite, set_enabled
from flagservice.push.publish import publish_request
from tests.browser.conftest import new_stack
from tests.browser.test_browser_propagation import (
    test_a_write_during_a_redis_outage_reaches_the_page_once_replayed,
    test_every_kill_switch_flip_reaches_the_page,
    test_the_provider_reconnects_after_a_server_restart_and_catches_up,
)

pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]
__all__ = [
    "test_a_write_during_a_redis_outage_reaches_the_page_once_replayed",
    "test_every_kill_switch_flip_reaches_the_page",
    "test_the_provider_reconnects_after_a_server_restart_and_catches_up",
]


@pytest.fixture(scope="module")
def stack(
    postgres_url: str, page_site: StaticSite, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The conftest's stack, its servers serving the push channel's stand-in instead of the SSE stream."""
    yield from new_stack(postgres_url, page_site, browser, tmp_path_factory, channel=True)


@pytest.fixture
def probe(stack: Stack, flag: str) -> Iterator[ProbePage]:
    """The conftest's probe, once subscribed and past the adapter's first catch-up re-fetch: a test's write
    then reaches it by a channel message (or, in the outage test, by the replay's), never by that re-fetch."""
    page = stack.open_probe(flag)
    page.page.wait_for_function("window.probe.opened >= 1 && window.probe.fetches >= 2", timeout=10_000)
    yield page
    print("provider events:", page.events())
    print("changes:", page.changes())
    print("stream messages and fetches:", page.page.evaluate("window.probe.messages"))
    page.close()


def test_the_page_is_told_the_channel_not_the_sse_stream(stack: Stack) -> None:
    answer = stack.primary.http.post(f"{stack.primary.url}/ofrep/v1/evaluate/flags", json={"context": {}}, timeout=10)

    (stream,) = answer.json()["eventStreams"]
    assert stream["type"] == "sse" and stream["url"].startswith("ws://127.0.0.1:")
    assert "/event/realtime?" in stream["url"] and "token=v1." in stream["url"]


def test_an_older_change_message_arriving_late_never_hides_a_newer_change(
    stack: Stack, probe: ProbePage, flag: str
) -> None:
    """Every container publishes its own messages (deployed, through asynchronous invokes), and one owed by a
    container whose channel was down is sent again by its next sync pass: an older revision's message may arrive
    after a newer one. The provider debounces messages (50 ms) and re-fetches with the last one's etag; a worker
    whose bulk snapshot is at that older revision answers 304, and the newer change was never shown."""
    # Given the page past its catch-up; when a kill switch is flipped and another container's late message for
    # an older revision (1: the flag set's first) arrives right behind the flip's own
    value, seen = not flow.current_value(probe), len(probe.changes())
    acked = set_enabled(stack.primary, flag, value)
    publish_url = f"http://127.0.0.1:{stack.primary.env['DEV_PUBLISH_PORT']}/event"
    late = requests.post(publish_url, json=publish_request(stack.primary.env["FLAGS_ENV"], 1, time.time()), timeout=10)
    assert late.status_code == 200, late.text

    # Then the page shows the flip within the bound
    change = probe.wait_for_value(value, seen, flow.SHORT.wait)
    assert change is not None and change.at - acked <= flow.BOUND_SECONDS, (change, acked)
