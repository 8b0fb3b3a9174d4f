"""A real browser on the local flag service (issue 16): the harness of tests/browser and browser_propagation.py.

- The page (tests/browser/page/) runs OpenFeature's web SDK with the OFREP web provider, polling off. Both are
  pinned in tests/browser/package.json and its lock file, installed with `npm ci` and bundled into one file with
  esbuild at run time. It records, with Date.now(), every change of one flag's value (`window.probe.changes`).
- A tiny static server gives the page an origin of its own (another port than the service), so every call of
  the provider is cross-origin and CORS is exercised as a real deployment would.
- Headless Chromium is Debian's (/usr/bin/chromium), driven by Playwright with that executable (never
  `playwright install`: browser downloads fail on these machines).
- The service is `python -m local.server`, what `make dev` runs, event stream included, on a
  Redis and a PostgreSQL the caller gives. It keeps its PORT and EVENTS_PORT across a restart, so the page's
  provider finds it where it was. A second server on the same stores writes while the first one is down.

Delays are measured from the wall clock after a write's 2xx was received here to the page's Date.now() at the
change: one clock, the machine's.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from bench import REPO
from local.embedded import ServerProcess, free_port

PAGE_PACKAGE = REPO / "tests" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
ADMIN_TOKEN = "browser-admin-token-0123456789abcdef0123456789"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 20.0
PAGE_READY_SECONDS = 15.0
DROPPED_ENV = ("AWS_LAMBDA_FUNCTION_NAME", "DB_SECRET_ARN", "REDIS_AUTH_SECRET_ARN", "DEV_HANDLER", "DEV_DATA_DIR")


class HarnessError(RuntimeError):
    """Something the measurement needs did not start or answer; the message says what and shows its output."""


def _run(argv: list[str], cwd: Path, timeout: float) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise HarnessError(f"{' '.join(argv[:2])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def build_page(out_dir: Path) -> Path:
    """`npm ci` from the committed lock file, then esbuild: `out_dir` gets index.html and bundle.js."""
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("npm is not installed: the browser page needs Node 20+ and npm")
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], PAGE_PACKAGE, timeout=240)
    esbuild = PAGE_PACKAGE / "node_modules" / ".bin" / "esbuild"
    bundle = ["--bundle", "--format=esm", "--platform=browser", "--log-level=warning"]
    _run([str(esbuild), "page/main.js", *bundle, f"--outfile={out_dir / 'bundle.js'}"], PAGE_PACKAGE, timeout=120)
    shutil.copy(PAGE_PACKAGE / "page" / "index.html", out_dir / "index.html")
    return out_dir


def installed_versions() -> dict[str, str]:
    """The versions npm installed for the page (the pinned ones, as the lock file says)."""
    names = ("@openfeature/web-sdk", "@openfeature/ofrep-web-provider", "@openfeature/ofrep-core", "esbuild")
    found = {}
    for name in names:
        manifest = PAGE_PACKAGE / "node_modules" / name / "package.json"
        found[name] = json.loads(manifest.read_text())["version"]
    return found


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class StaticSite:
    """The page's own origin: a threaded static file server on a free port of 127.0.0.1."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium through Playwright; closed (with its processes) at the end."""
    if not CHROMIUM.exists():
        raise HarnessError(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install`)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class LocalService:
    """One `python -m local.server` on fixed ports (PORT and EVENTS_PORT): stop() then start() again."""

    name: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}"

    def start(self) -> None:
        """Start and wait until it printed its `serving` line (its port is bound: requests queue until served)."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "local.server"], cwd=REPO, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + STARTUP_SECONDS
        while "serving http://" not in self._output(offset):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise HarnessError(f"the {self.name} server did not start:\n{self._output(offset)[-4000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM to the server's pid (it stops its workers and event stream), SIGKILL to its group if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_SECONDS)

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return self.http.request(method, f"{self.url}{path}", json=body, headers=headers, timeout=10)

    def _output(self, offset: int) -> str:
        with self.log.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")


def service_env(redis_url: str, database_url: str, flags_env: str, *, workers: int) -> dict[str, str]:
    """The environment of one local server: the given stores, a known admin token, two fixed free ports."""
    env = {name: value for name, value in os.environ.items() if name not in DROPPED_ENV}
    env.update(
        PYTHONPATH=f"{REPO / 'runtime'}:{REPO}", PORT=str(free_port()), EVENTS_PORT=str(free_port()),
        WORKERS=str(workers), REDIS_URL=redis_url, DATABASE_URL=database_url, ADMIN_TOKEN=ADMIN_TOKEN,
        FLAGS_ENV=flags_env, POWERTOOLS_METRICS_NAMESPACE="FeatureFlagsBrowser", LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


def channel_settings(primary: dict[str, str], other: dict[str, str]) -> None:
    """DEV_EVENTS=channel on both: the primary runs the stand-in on fixed ports, the other publishes to it.

    Deployed, every container of an environment publishes to its one channel; two stand-ins on the same
    stores would split the messages (whichever server replays a write publishes it, to its own channel).
    The token key is fixed, so a page's token stays valid across the primary's restart.
    """
    secret, publish = secrets.token_urlsafe(32), str(free_port())
    primary.update(DEV_EVENTS="channel", PUSH_TOKEN_SECRET=secret, DEV_PUBLISH_PORT=publish)
    other.update(
        DEV_EVENTS="channel", PUSH_TOKEN_SECRET=secret, PUSH_PUBLISH_URL=f"http://127.0.0.1:{publish}/event",
        PUSH_CHANNEL_URL=f"ws://127.0.0.1:{primary['EVENTS_PORT']}/event/realtime",
    )  # fmt: skip


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


@dataclass(frozen=True)
class Change:
    at: float  # the page's Date.now(), in seconds
    value: Any  # true, false, or "error:<code>" when the provider had no value (a flag missing from its answer)
    source: str  # what made the page look: a provider event's name, "ready", or "timer"


@dataclass
class ProbePage:
    """The page in a fresh browser context (its own storage), showing one flag."""

    page: Page

    @classmethod
    def open(cls, browser: Browser, site_url: str, service_url: str, flag: str) -> ProbePage:
        page = browser.new_context().new_page()
        page.goto(f"{site_url}/index.html?{urlencode({'service': service_url, 'flag': flag})}")
        page.wait_for_function("window.probe && (window.probe.ready || window.probe.failure)",
                               timeout=PAGE_READY_SECONDS * 1000)  # fmt: skip
        failure = page.evaluate("window.probe.failure")
        if failure:
            page.context.close()
            raise HarnessError(f"the OFREP web provider did not get ready: {failure}")
        return cls(page)

    def changes(self) -> list[Change]:
        return [Change(c["at"] / 1000, c["value"], c["source"]) for c in self.page.evaluate("window.probe.changes")]

    def events(self) -> list[dict[str, Any]]:
        return list(self.page.evaluate("window.probe.events"))

    def wait_for_value(self, value: Any, after: int, timeout: float) -> Change | None:
        """The first change past the first `after` ones that shows `value`, or None if none did within `timeout`."""
        script = "([n, v]) => window.probe.changes.slice(n).some((c) => c.value === v)"
        try:
            self.page.wait_for_function(script, arg=[after, value], timeout=timeout * 1000, polling=10)
        except PlaywrightTimeoutError:
            return None
        return next(change for change in self.changes()[after:] if change.value == value)

    def close(self) -> None:
        self.page.context.close()


def set_enabled(service: LocalService, key: str, enabled: bool) -> float:
    """The kill switch (PATCH enabled); the wall-clock time its 2xx was received."""
    answer = service.admin("PATCH", f"/admin/flags/{key}", {"enabled": enabled})
    acked = time.time()
    if answer.status_code != 200:
        raise HarnessError(f"PATCH {key}: {answer.status_code} {answer.text}")
    return acked
