"""The whole harness: the page's service, a second server on the same stores, their Redis, the site, the browser."""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Browser

from bench.consistency.browser.errors import HarnessError
from bench.consistency.browser.probe import ProbePage
from bench.consistency.browser.service import LocalService, channel_settings, service_env
from bench.consistency.browser.site import StaticSite
from local.embedded import ServerProcess


@dataclass
class Stack:
    """The page's service (`primary`), a second server on the same stores (`other`), their Redis, and the page."""

    redis: ServerProcess
    primary: LocalService
    other: LocalService
    site: StaticSite
    browser: Browser

    def create_flag(self, enabled: bool = True) -> str:
        key = f"browser-{uuid.uuid4().hex[:10]}"
        answer = self.primary.admin("POST", "/admin/flags", {"key": key, "enabled": enabled})
        if answer.status_code != 201:
            raise HarnessError(f"creating {key}: {answer.status_code} {answer.text}")
        return key

    def open_probe(self, flag: str) -> ProbePage:
        return ProbePage.open(self.browser, self.site.url, self.primary.url, flag)


@contextlib.contextmanager
def running_stack(
    redis: ServerProcess,
    database_url: str,
    site: StaticSite,
    browser: Browser,
    workdir: Path,
    *,
    channel: bool = False,
) -> Iterator[Stack]:
    """Both servers started on `redis` and `database_url` (migrated), stopped by pid at the end; `channel`:
    the push channel's stand-in instead of the SSE stream (one for both, as deployed: `channel_settings`).

    Redis stays the caller's to stop, as `stack.redis`: a Redis outage case replaces it with the restarted one.
    """
    flags_env = f"browser{uuid.uuid4().hex[:8]}"
    env = functools.partial(service_env, redis.url, database_url, flags_env)
    primary_env, other_env = env(workers=2), env(workers=1)
    if channel:
        channel_settings(primary_env, other_env)
    primary = LocalService("primary", primary_env, workdir / "primary.log")
    other = LocalService("other", other_env, workdir / "other.log")
    try:
        primary.start()
        other.start()
        yield Stack(redis, primary, other, site, browser)
    finally:
        other.stop()
        primary.stop()
