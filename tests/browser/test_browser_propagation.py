"""Issue 16 in a real browser: a kill switch reaches OpenFeature's web client through the event stream.

Headless Chromium runs `@openfeature/web-sdk` with `@openfeature/ofrep-web-provider` (pinned, bundled, polling
off) on a page of its own origin; the service is the local server `make dev` runs (bench/consistency/browser/).
The short form of bench/consistency/browser_propagation.py: every flip must reach the page, the worst within the
contract's 5 s and the p99 within 2 s (the 1 s target, with a 2x margin; `make bench` reports the real p99 against 1 s).
"""

from __future__ import annotations

import json
import random

import pytest

from bench.common.measure import percentile
from bench.consistency import browser_propagation as flow
from bench.consistency.browser import PAGE_PACKAGE, ProbePage, Stack, installed_versions
from tests.browser.conftest import service_logs

pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]
BOUND = flow.BOUND_SECONDS  # CONTRACT.md section 5: every connected client within 5 s of the write's 2xx
P99_BOUND = 2 * flow.TARGET_SECONDS
RECOVERY_BOUND = 2 * flow.BOUND_SECONDS  # from the server (or Redis) being back: the bound, with a 2x margin


def test_the_page_runs_the_pinned_packages(page_site: object) -> None:
    pinned = json.loads((PAGE_PACKAGE / "package.json").read_text())["dependencies"]
    locked = json.loads((PAGE_PACKAGE / "package-lock.json").read_text())["packages"]

    for name, version in installed_versions().items():
        assert version == locked[f"node_modules/{name}"]["version"]
        assert name not in pinned or pinned[name] == version
    assert installed_versions()["@openfeature/ofrep-web-provider"] == "0.4.3"
    assert installed_versions()["@openfeature/web-sdk"] == "1.10.0"


def test_every_kill_switch_flip_reaches_the_page(stack: Stack, probe: ProbePage, flag: str) -> None:
    flips = flow.flip_repeatedly(stack, probe, flag, flow.SHORT, random.Random(16))

    delays = [flip.delay for flip in flips]
    print("delays (s):", [None if d is None else round(d, 3) for d in delays])
    assert None not in delays, f"flips never shown by the page: {delays}\n{service_logs(stack)}"
    assert [change.value for change in probe.changes()] == [True, *(flip.value for flip in flips)]
    assert max(delays) <= BOUND, delays
    assert percentile(delays, 99) <= P99_BOUND, delays


def test_the_provider_reconnects_after_a_server_restart_and_catches_up(
    stack: Stack, probe: ProbePage, flag: str
) -> None:
    recovery = flow.across_restart(stack, probe, flag, flow.SHORT)

    print("restart:", recovery, "catch-up", recovery.catch_up)
    assert recovery.catch_up is not None, f"the change made while it was down never came\n{service_logs(stack)}"
    assert recovery.catch_up <= RECOVERY_BOUND
    assert all(isinstance(change.value, bool) for change in probe.changes()), "the page lost the flag meanwhile"
    after = flow.flip_once(stack, probe, flag, flow.SHORT.wait)  # the stream is live again, not just caught up
    assert after.delay is not None and after.delay <= BOUND, after


def test_a_write_during_a_redis_outage_reaches_the_page_once_replayed(
    stack: Stack, probe: ProbePage, flag: str
) -> None:
    recovery = flow.across_redis_outage(stack, probe, flag, flow.SHORT)

    print("outage:", recovery, "catch-up", recovery.catch_up)
    assert recovery.catch_up is not None, f"the write made while Redis was down never came\n{service_logs(stack)}"
    assert recovery.catch_up <= RECOVERY_BOUND
    assert all(isinstance(change.value, bool) for change in probe.changes()), "the page lost the flag meanwhile"
    after = flow.flip_once(stack, probe, flag, flow.SHORT.wait)
    assert after.delay is not None and after.delay <= BOUND, after
