"""One real local server for the OFREP suites: `python -m local.server`, the process `make dev` runs.

It serves the Lambda handler on the session's real Redis and PostgreSQL (tests/conftest.py), with a database
and a cache namespace of its own and a known admin token. The flags of tests/ofrep/flags.py are created
through the admin API once; at the end the server is stopped by its pid, its database dropped and its cache
keys deleted.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

from flagservice.adapters.migrations import migrate
from local.embedded import free_port
from tests import dev_server
from tests.ofrep import flags
from tests.servers import port_listening

REPO = Path(__file__).resolve().parents[2]
JS_PACKAGE = Path(__file__).resolve().parent / "js"
PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class LocalServer:
    """A running local server: where it listens, its pid, the admin token it was given and its log file."""

    url: str
    port: int
    pid: int
    admin_token: str
    log: Path

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}


def _own_database(postgres_url: str) -> str:
    """A new database on the session's PostgreSQL, migrated (so the server seeds no demo flags into it)."""
    name = f"ofrep_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    migrate(url)
    return url


def _drop_database(postgres_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _delete_cache_keys(redis_url: str, env: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"ff:{{{env}}}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _wait_until_serving(process: subprocess.Popen[bytes], log: Path) -> str | None:
    """The URL the server printed once it serves, or None if it exited first; fails if it takes too long."""
    url = dev_server.serving_url(process, log)
    if url is None and process.poll() is None:
        dev_server.stop(process)
        pytest.fail(
            f"the local server did not start within {dev_server.STARTUP_SECONDS} s:\n{log.read_text(errors='replace')}"
        )
    return url


def _start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on a free port, taking another if someone else took that one before it bound."""
    for _ in range(PORT_ATTEMPTS):
        env["PORT"] = str(free_port())
        process = dev_server.start(env, log)
        url = _wait_until_serving(process, log)
        if url is not None:
            return process, url
        if "already in use" not in log.read_text(errors="replace"):
            break
    pytest.fail(f"the local server did not start:\n{log.read_text(errors='replace')}")


def _create_flags(server: LocalServer) -> None:
    for definition in flags.all_flags():
        answer = requests.post(
            f"{server.url}/admin/flags", json=definition, headers=server.admin_headers(), timeout=10
        )  # fmt: skip
        assert answer.status_code == 201, answer.text


@pytest.fixture(scope="session")
def ofrep_server(postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The local server with the flags of tests/ofrep/flags.py, for the whole session; stopped at the end."""
    database_url = _own_database(postgres_url)
    cache_env = f"ofrep{uuid.uuid4().hex[:8]}"
    token = secrets.token_urlsafe(32)
    env = dev_server.inherited_env()
    env.update(
        PYTHONPATH=f"{REPO / 'runtime'}:{REPO}", WORKERS="2", REDIS_URL=redis_url, DATABASE_URL=database_url,
        ADMIN_TOKEN=token, FLAGS_ENV=cache_env,
    )  # fmt: skip
    log = tmp_path_factory.mktemp("ofrep-server") / "server.log"
    process, url = _start(env, log)
    server = LocalServer(url=url, port=int(url.rsplit(":", 1)[1]), pid=process.pid, admin_token=token, log=log)
    try:
        _create_flags(server)
        yield server
    finally:
        dev_server.stop(process)
        _drop_database(postgres_url, database_url)
        _delete_cache_keys(redis_url, cache_env)
    assert not port_listening(server.port), f"port {server.port} still listening after the server stopped"


def required_tool(name: str) -> str:
    """The path of `name`; a missing tool fails the test (CI has node and npm: nothing here may skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the JavaScript provider tests need Node 20+ and npm")
    return path


@pytest.fixture(scope="session")
def node_package() -> Path:
    """tests/ofrep/js after `npm ci` from its committed lock file: exactly the pinned provider and SDK."""
    done = subprocess.run(
        [required_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS_PACKAGE,
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return JS_PACKAGE
