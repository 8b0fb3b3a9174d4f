"""flagctl against the real local server (real Redis and PostgreSQL), with its bearer token.

The server is `python -m local.server`, started here as its own process group on a free
port and stopped by its pid. Each test uses its own flag keys; the cache namespace is this module's own.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagctl.cli import main
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[2]
TOKEN = "flagctl-test-token-" + "0123456789abcdef" * 2
pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def server_url(postgres_url: str, redis_url: str) -> Iterator[str]:
    env = {
        **os.environ,
        "PORT": str(free_port()),
        "WORKERS": "1",
        "REDIS_URL": redis_url,
        "DATABASE_URL": postgres_url,
        "ADMIN_TOKEN": TOKEN,
        "FLAGS_ENV": f"flagctl{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": f"{REPO / 'runtime'}:{REPO}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local.server"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield _wait_for_url(process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the server's own group: it and its workers
            process.wait(timeout=30)


def _wait_for_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if line.startswith("serving http://"):
            return line.split()[1]
    raise AssertionError("the local server did not start:\n" + "".join(seen))


def flagctl(url: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--url", url, "--token", TOKEN, *args], out=out, err=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def fresh_key() -> str:
    return f"flagctl-{uuid.uuid4().hex[:10]}"


def create(url: str, tmp_path: Path, key: str, **fields: Any) -> dict[str, Any]:
    path = tmp_path / f"{key}.json"
    path.write_text(json.dumps({"key": key, "enabled": True, **fields}))
    code, out, err = flagctl(url, "set", str(path))
    assert code == 0, err
    stored: dict[str, Any] = json.loads(out)
    return stored


def test_set_creates_a_flag_from_a_json_file_and_get_reads_it_back(server_url: str, tmp_path: Path) -> None:
    key = fresh_key()

    stored = create(server_url, tmp_path, key, description="created by flagctl")
    code, out, err = flagctl(server_url, "get", key)

    assert stored["version"] == 1 and stored["enabled"] is True
    assert code == 0
    assert json.loads(out)["description"] == "created by flagctl"
    assert err.startswith("X-Cache: ")


def test_set_reads_a_definition_from_stdin(server_url: str) -> None:
    key = fresh_key()

    code, out, _ = flagctl(server_url, "set", "-", stdin=json.dumps({"key": key, "enabled": False}))

    assert code == 0 and json.loads(out)["enabled"] is False


def test_list_shows_every_flag_with_its_state(server_url: str, tmp_path: Path) -> None:
    key = fresh_key()
    create(server_url, tmp_path, key)

    code, table, _ = flagctl(server_url, "list")
    _, as_json, _ = flagctl(server_url, "--json", "list")

    assert code == 0
    assert table.splitlines()[0].split() == ["KEY", "ENABLED", "VERSION", "UPDATED"]
    assert any(line.split()[:3] == [key, "true", "1"] for line in table.splitlines())
    assert key in {flag["key"] for flag in json.loads(as_json)}


def test_kill_switches_a_flag_off_for_every_reader(server_url: str, tmp_path: Path) -> None:
    key = fresh_key()
    create(server_url, tmp_path, key)

    code, out, err = flagctl(server_url, "kill", key)
    _, read, _ = flagctl(server_url, "get", key)

    assert code == 0 and json.loads(out)["enabled"] is False and json.loads(out)["version"] == 2
    assert "kill accepted, now version 2, enabled=false" in err
    assert json.loads(read)["enabled"] is False


def test_revert_restores_an_earlier_definition_and_history_shows_every_step(server_url: str, tmp_path: Path) -> None:
    # Given a flag created, then killed
    key = fresh_key()
    create(server_url, tmp_path, key)
    flagctl(server_url, "kill", key)

    # When it is reverted to version 1, and its history asked as a table and as JSON
    code, out, _ = flagctl(server_url, "revert", key, "1")
    _, table, _ = flagctl(server_url, "history", key)
    _, as_json, _ = flagctl(server_url, "--json", "history", key)

    # Then version 3 is version 1's definition, and the history shows every step, newest first
    assert code == 0 and json.loads(out)["enabled"] is True and json.loads(out)["version"] == 3
    rows = [line.split() for line in table.splitlines()[1:]]
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("3", "revert", "local-admin", "true"),
        ("2", "patch", "local-admin", "false"),
        ("1", "create", "local-admin", "true"),
    ]
    assert [entry["version"] for entry in json.loads(as_json)] == [3, 2, 1]


def test_a_stale_if_match_is_refused_and_changes_nothing(server_url: str, tmp_path: Path) -> None:
    key = fresh_key()
    create(server_url, tmp_path, key)

    code, _, err = flagctl(server_url, "kill", key, "--if-match", "5")
    _, read, _ = flagctl(server_url, "get", key)

    assert code == 1 and "412 VERSION_CONFLICT" in err
    assert json.loads(read)["enabled"] is True


def test_killing_a_flag_that_does_not_exist_is_an_error(server_url: str) -> None:
    code, out, err = flagctl(server_url, "kill", fresh_key())

    assert code == 1 and out == ""
    assert "404 FLAG_NOT_FOUND" in err


def test_a_wrong_token_is_forbidden(server_url: str) -> None:
    out, err = io.StringIO(), io.StringIO()

    code = main(["--url", server_url, "--token", "x" * 40, "kill", fresh_key()], out=out, err=err)

    assert code == 1 and "403 FORBIDDEN" in err.getvalue()


def test_admin_commands_without_credentials_fail_before_sending(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FLAGCTL_TOKEN", "ADMIN_TOKEN", "FLAGCTL_URL"):
        monkeypatch.delenv(name, raising=False)
    err = io.StringIO()

    code = main(["--url", server_url, "kill", fresh_key()], out=io.StringIO(), err=err)

    assert code == 2 and "FLAGCTL_TOKEN" in err.getvalue()


def test_python_dash_m_flagctl_runs_from_the_checkout(server_url: str, tmp_path: Path) -> None:
    key = fresh_key()
    create(server_url, tmp_path, key)
    env = {**os.environ, "FLAGCTL_URL": server_url, "FLAGCTL_TOKEN": TOKEN}

    done = subprocess.run(
        [sys.executable, "-m", "flagctl", "get", key], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["key"] == key


def test_warm_cache_fills_the_cache_with_every_flag_and_reports_none_behind(server_url: str, tmp_path: Path) -> None:
    # Given a flag (outside a cache move, the cache to warm is the one cache)
    key = fresh_key()
    create(server_url, tmp_path, key)

    code, out, err = flagctl(server_url, "warm-cache")

    report = json.loads(out)
    assert code == 0, err
    assert report["flags"] >= 1 and report["stored"] + report["present"] == report["flags"] and report["behind"] == 0
