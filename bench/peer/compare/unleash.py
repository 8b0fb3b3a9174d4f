"""The peer: Unleash 8 (npm, bench/peer/unleash) on its own throwaway PostgreSQL, its flag and its route."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import http_load
from bench.common.client import request
from bench.common.http_load import Target
from bench.peer.compare.plan import FLAG_KEY
from local.embedded import ServerProcess, free_port, start_postgres

UNLEASH_DIR = Path(__file__).resolve().parents[1] / "unleash"  # npm ci by make bench-peer
ADMIN_TOKEN = "*:*.admin-secret"
FRONTEND_TOKEN = "default:development.frontend-secret"
READY_SECONDS = 120.0


@dataclass
class Unleash:
    process: subprocess.Popen[bytes]
    port: int
    postgres: ServerProcess
    log_path: Path
    startup_s: float
    version: str

    def stop(self) -> None:
        """SIGTERM to its process group (Unleash stops gracefully), SIGKILL if it lingers; then its PostgreSQL."""
        try:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(5)
        finally:
            self.postgres.stop()


def unleash_version() -> str:
    manifest = UNLEASH_DIR / "node_modules" / "unleash-server" / "package.json"
    if not manifest.exists():
        raise RuntimeError(f"Unleash is not installed: run `npm ci` in {UNLEASH_DIR} (make bench-peer does)")
    return str(json.loads(manifest.read_text())["version"])


def unleash_env(http_port: int, db_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "UNLEASH_"))}
    env.update(
        UNLEASH_HTTP_PORT=str(http_port), UNLEASH_DB_PORT=str(db_port), NODE_ENV="production",
        INIT_ADMIN_API_TOKENS=ADMIN_TOKEN, INIT_FRONTEND_API_TOKENS=FRONTEND_TOKEN,
        SDK_API_RATE_LIMIT_PER_MINUTE="100000000", TOKEN_AUTHENTICATION_RATE_LIMIT_PER_MINUTE="100000000",
        FRONTEND_METRICS_RATE_LIMIT_PER_MINUTE="100000000", REGISTER_FRONTEND_RATE_LIMIT_PER_MINUTE="100000000",
        CHECK_VERSION="false", SEND_TELEMETRY="false", SCARF_ANALYTICS="false", DO_NOT_TRACK="1",
        UNLEASH_LOG_LEVEL="warn",
    )  # fmt: skip
    return env


def start_unleash(workdir: Path) -> Unleash:
    """Unleash's own PostgreSQL, then Unleash; ready when /health answers 200."""
    version = unleash_version()
    postgres = start_postgres(data_dir=workdir / "unleash-postgres", prefer=os.environ.get("DEV_SERVERS") or "system")
    port, log_path = free_port(), workdir / "unleash.log"
    began = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["node", "launcher.mjs"], cwd=UNLEASH_DIR, env=unleash_env(port, postgres.port),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    unleash = Unleash(process, port, postgres, log_path, 0.0, version)
    try:
        _wait_healthy(unleash, began + READY_SECONDS)
    except BaseException:
        unleash.stop()
        raise
    unleash.startup_s = round(time.monotonic() - began, 2)
    return unleash


def _wait_healthy(unleash: Unleash, deadline: float) -> None:
    while time.monotonic() < deadline:
        if unleash.process.poll() is not None:
            log = unleash.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"Unleash exited while starting:\n{log}")
        if request(unleash.port, "GET", "/health", timeout=2).status == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"Unleash did not answer /health within {READY_SECONDS} s")


def create_unleash_flag(port: int, key: str = FLAG_KEY) -> None:
    """The three admin calls: the toggle, the default strategy in `development`, switched on."""
    headers = {"Authorization": ADMIN_TOKEN, "Content-Type": "application/json"}
    base = f"/api/admin/projects/default/features/{key}"
    calls = [
        ("/api/admin/projects/default/features", {"name": key, "type": "release"}),
        (f"{base}/environments/development/strategies", {"name": "default", "parameters": {}}),
        (f"{base}/environments/development/on", None),
    ]
    for path, body in calls:
        answer = request(port, "POST", path, body=body, headers=headers, timeout=10)
        if answer.status not in (200, 201):
            raise RuntimeError(f"Unleash POST {path}: HTTP {answer.status} {answer.body[:300]!r}")


def unleash_target(port: int) -> Target:
    return Target("Unleash GET /api/frontend?userId=42", port, "GET", "/api/frontend?userId=42",
                  (("Authorization", FRONTEND_TOKEN),))  # fmt: skip


def wait_flag_visible(target: Target, key: str, timeout: float = 30.0) -> None:
    """The frontend API serves from a cache it refreshes by itself: wait until it shows the toggle on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_load.one_request(target)
        if status == 200 and any(t.get("name") == key and t.get("enabled") for t in json.loads(body)["toggles"]):
            return
        time.sleep(0.25)
    raise RuntimeError(f"Unleash's frontend API did not show {key} enabled within {timeout} s")


def _workdir() -> Path:
    """A folder PostgreSQL's unprivileged user can enter (a root-owned mkdtemp under /tmp is mode 700)."""
    base = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else Path(tempfile.gettempdir())
    path = Path(tempfile.mkdtemp(prefix="flagservice-peer-", dir=base))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def running_unleash() -> Iterator[Unleash]:
    workdir = _workdir()
    try:
        unleash = start_unleash(workdir)
        try:
            yield unleash
        finally:
            unleash.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
