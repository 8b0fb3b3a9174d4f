"""One `python -m local.server` (what `make dev` runs, event stream included) on the stores the caller gives."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench import REPO
from bench.consistency.browser.errors import HarnessError
from local.embedded import free_port

ADMIN_TOKEN = "browser-admin-token-0123456789abcdef0123456789"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 20.0
DROPPED_ENV = ("AWS_LAMBDA_FUNCTION_NAME", "DB_SECRET_ARN", "REDIS_AUTH_SECRET_ARN", "DEV_HANDLER", "DEV_DATA_DIR")


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


def set_enabled(service: LocalService, key: str, enabled: bool) -> float:
    """The kill switch (PATCH enabled); the wall-clock time its 2xx was received."""
    answer = service.admin("PATCH", f"/admin/flags/{key}", {"enabled": enabled})
    acked = time.time()
    if answer.status_code != 200:
        raise HarnessError(f"PATCH {key}: {answer.status_code} {answer.text}")
    return acked
