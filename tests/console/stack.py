"""The console's test stack: the real local server (`make dev`'s process) on its own Redis and database, and Chromium.

- The server is `python -m local.server`, event stream included, with a known admin token. Its
  database is new and empty, so the server migrates it and seeds the demo flags, as `make dev` does the
  first time. Its Redis is its own: the degraded-toast test pauses it (SIGSTOP).
- Chromium is Debian's (/usr/bin/chromium), driven by Playwright with that executable (never
  `playwright install`: browser downloads fail on these machines), launched as bench/consistency/browser/ does.

`python -m tests.console.screenshots` uses the same stack to redraw docs/console/.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from local.embedded import ServerProcess, free_port
from tests import dev_server
from tests.servers import create_database, redis_for_tests

REPO = Path(__file__).resolve().parents[2]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
# Waits for the page to be ready, never deadlines under test: generous, as the machine may be shared and busy.
ACTION_TIMEOUT_MS = 20_000
EXPECT_TIMEOUT_MS = 10_000


class StackError(RuntimeError):
    """The server or the browser did not start; the message carries its output."""


@dataclass
class ConsoleServer:
    """A running local server: its URL, admin token, Redis and log; `admin()` calls its admin API."""

    url: str
    token: str
    redis: ServerProcess
    process: subprocess.Popen[bytes]
    log: Path
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def console_url(self) -> str:
        return f"{self.url}/console"

    def admin(self, method: str, path: str, *, version: int | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        return self.http.request(method, self.url + path, headers=headers, timeout=10, **kwargs)

    def flag(self, key: str) -> dict[str, Any]:
        """The stored flag, from PostgreSQL (its newest history entry): a read route may lag a write by a second."""
        answer = self.admin("GET", f"/admin/flags/{key}/history", params={"limit": "1"})
        assert answer.status_code == 200, answer.text
        newest = answer.json()["history"][0]
        return {**newest["after"], "version": newest["version"]}

    def read(self, key: str) -> requests.Response:
        """A client's read of the flag (the public route, counted in the cache stats)."""
        return self.http.get(f"{self.url}/flags/{key}", timeout=10)

    def create_flag(self, prefix: str = "flag", **fields: Any) -> dict[str, Any]:
        """A new flag with a unique key (enabled unless told otherwise); its stored definition."""
        definition = {"key": f"{prefix}-{uuid.uuid4().hex[:8]}", "enabled": True, **fields}
        answer = self.admin("POST", "/admin/flags", json=definition)
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def patch(self, key: str, changes: dict[str, Any], *, version: int | None = None) -> dict[str, Any]:
        answer = self.admin("PATCH", f"/admin/flags/{key}", version=version, json=changes)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _wait_until_serving(process: subprocess.Popen[bytes], log: Path) -> str:
    url = dev_server.serving_url(process, log)
    if url is None:
        dev_server.stop(process)
        raise StackError(f"the local server did not start:\n{log.read_text(errors='replace')}")
    return url


def _drop_database(postgres_url: str, url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'.encode())


@contextlib.contextmanager
def running_server(
    postgres_url: str, log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[ConsoleServer]:
    """The local server on a new Redis and a new database of `postgres_url`'s server; all removed at the end.
    `extra_env`: settings of its own (the push channel's stand-in instead of the SSE stream)."""
    redis, database_url = redis_for_tests(), create_database(postgres_url)
    token = secrets.token_urlsafe(32)
    env = dev_server.inherited_env()
    env.update(
        PYTHONPATH=f"{REPO / 'runtime'}:{REPO}", WORKERS="2", PORT=str(free_port()), REDIS_URL=redis.url,
        DATABASE_URL=database_url, ADMIN_TOKEN=token, FLAGS_ENV=f"console{uuid.uuid4().hex[:6]}",
        DEV_LOG_LEVEL="DEBUG",  # every request line in the log printed when a test fails
    )  # fmt: skip
    env.update(extra_env or {})
    log = log_dir / "server.log"
    try:
        process = dev_server.start(env, log)
        try:
            yield ConsoleServer(_wait_until_serving(process, log), token, redis, process, log)
        finally:
            dev_server.stop(process)
    finally:
        redis.resume()  # a test that failed while Redis was paused must not leave it stopped
        redis.stop()
        _drop_database(postgres_url, database_url)


def open_console(
    browser: Browser,
    server: ConsoleServer,
    viewport: dict[str, int] = DESKTOP,
    prepare: Callable[[BrowserContext], None] | None = None,
) -> Page:
    """A new browser context (its own sessionStorage) on the console, signed in with the admin token;
    `prepare` sees the context first (to route its requests)."""
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    if prepare is not None:
        prepare(context)
    page = context.new_page()
    pending: dict[object, str] = {}
    page.on(
        "request",
        lambda request: pending.__setitem__(request, f"{time.monotonic():.3f} {request.method} {request.url}"),
    )
    page.on("requestfinished", lambda request: pending.pop(request, None))
    page.on("requestfailed", lambda request: pending.pop(request, None))
    try:
        page.goto(server.console_url)
    except Exception as error:
        raise StackError(f"{error}\nunfinished at {time.monotonic():.3f}: {list(pending.values())}") from error
    page.fill('[data-action="token"]', server.token)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-flag-key]")
    return page


def horizontal_overflow(page: Page) -> int:
    """How many pixels the page, or any element of it, reaches past the viewport's right edge (0: none)."""
    return int(
        page.evaluate(
            """() => {
              const width = document.documentElement.clientWidth;
              const rights = [...document.querySelectorAll("body *")].map((e) => e.getBoundingClientRect().right);
              return Math.max(document.documentElement.scrollWidth - width, Math.ceil(Math.max(...rights)) - width, 0);
            }"""
        )
    )
