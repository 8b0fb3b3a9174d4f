"""`make dev` end to end with the pip-packaged servers, and the embedded-server library under it.

`make dev` runs as a subprocess in its own process group with DEV_SERVERS=embedded (so the pip
packages are proven even where system binaries exist) and its data in a throwaway folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from local import binaries, dirs, embedded
from local.embedded import DataDirError, free_port, start_postgres, start_redis
from tests import servers
from tests.conftest import unavailable_here
from tests.servers import pids_alive, port_listening, traversable_tmp_dir

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]
STARTUP_SECONDS = 120.0
ENV_DROPPED = ("REDIS_URL", "DATABASE_URL", "ADMIN_TOKEN", "DB_SECRET_ARN", "AWS_LAMBDA_FUNCTION_NAME")


@dataclass
class DevRun:
    """One `make dev`: its process, every output line, and what it announced."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    started_in: float = 0.0

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_ports(self) -> list[int]:
        return [int(port) for port in re.findall(r"(?:redis|postgresql)://\S*?127\.0\.0\.1:(\d+)", self.output)]

    def descendants(self) -> list[int]:
        """Every process under `make` now: the server, its workers, Redis, PostgreSQL and its backends."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("serving http://"):
                self.ready.set()
        self.ready.set()


def start_dev(data_dir: Path, **extra: str) -> DevRun:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROPPED}
    env.update(DEV_SERVERS="embedded", DEV_DATA_DIR=str(data_dir), WORKERS="2", PORT=str(free_port()), **extra)
    began = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "dev"], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    run = DevRun(process, int(env["PORT"]))
    threading.Thread(target=run._read, daemon=True).start()
    if not run.ready.wait(STARTUP_SECONDS) or process.poll() is not None:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(30)
        pytest.fail(f"make dev did not start:\n{run.output}")
    run.started_in = time.monotonic() - began
    return run


def stop_dev(run: DevRun, signum: int, *, group: bool) -> None:
    """Stop as a terminal's Ctrl-C does (SIGINT to the group) or as a supervisor does (SIGTERM to make)."""
    pids, ports = run.descendants(), [run.port, *run.server_ports()]
    (os.killpg if group else os.kill)(run.process.pid, signum)
    run.process.wait(60)
    time.sleep(0.1)

    assert pids_alive(pids) == [], run.output
    assert [port for port in ports if port_listening(port)] == []


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = traversable_tmp_dir("flagservice-make-dev-")
    yield folder / "data"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def launch(data_dir: Path) -> Iterator[Callable[..., DevRun]]:
    """start_dev, with every run still going at the end of the test stopped (a failed assertion leaks nothing)."""
    runs: list[DevRun] = []

    def start(**extra: str) -> DevRun:
        runs.append(start_dev(data_dir, **extra))
        return runs[-1]

    yield start
    for run in runs:
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGINT)
            try:
                run.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(run.process.pid, signal.SIGKILL)


def test_make_dev_reuses_the_installed_virtualenv() -> None:
    planned = subprocess.run(["make", "-n", "dev"], cwd=REPO, capture_output=True, text=True, check=True).stdout

    assert "pip install" not in planned, "the .venv install stamp is stale: run `make install` first"


def test_make_dev_serves_stops_everything_and_keeps_its_data(launch: Callable[..., DevRun], data_dir: Path) -> None:
    first = launch()
    token = re.search(r"Bearer (\S+)", first.output).group(1)  # type: ignore[union-attr]
    admin = {"Authorization": f"Bearer {token}"}

    health = requests.get(first.url + "/health", timeout=10)
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    demo = {flag["key"] for flag in requests.get(first.url + "/flags", timeout=10).json()["flags"]}
    assert demo == {"payments-kill-switch", "checkout-theme", "new-search"}
    created = requests.post(
        first.url + "/admin/flags", json={"key": "made-in-run-1", "enabled": True}, headers=admin, timeout=10
    )
    assert created.status_code == 201, created.text
    killed = requests.patch(
        first.url + "/admin/flags/payments-kill-switch", json={"enabled": False}, headers=admin, timeout=10
    )
    assert killed.status_code == 200, killed.text
    stop_dev(first, signal.SIGINT, group=True)
    assert len(token) >= 32 and first.output.count(token) == 1, "the generated token is printed once, never again"
    assert "pip install" not in first.output

    second = launch(ADMIN_TOKEN="a-token-chosen-by-the-developer-0123456789")
    kept = requests.get(second.url + "/flags/made-in-run-1", timeout=10)
    assert kept.status_code == 200, second.output[-3000:]
    switch = requests.get(second.url + "/flags/payments-kill-switch", timeout=10).json()
    assert (switch["enabled"], switch["version"]) == (False, 2), "demo flags are seeded once, never again"
    refused = subprocess.run(["make", "dev-reset"], cwd=REPO, env={**os.environ, "DEV_DATA_DIR": str(data_dir)})
    assert refused.returncode != 0 and data_dir.exists()
    stop_dev(second, signal.SIGTERM, group=False)
    print(f"make dev started in {first.started_in:.1f} s, then {second.started_in:.1f} s")

    reset = subprocess.run(["make", "dev-reset"], cwd=REPO, env={**os.environ, "DEV_DATA_DIR": str(data_dir)})
    assert reset.returncode == 0 and not data_dir.exists()


def test_several_make_dev_share_servers_given_by_url_and_a_third_without_urls_refuses(
    launch: Callable[..., DevRun], data_dir: Path
) -> None:
    first = launch()
    urls = dict(re.findall(r"^  (redis|postgres)\s+(\S+)", first.output, re.MULTILINE))
    second = launch(REDIS_URL=urls["redis"], DATABASE_URL=urls["postgres"])
    assert requests.get(second.url + "/flags/new-search", timeout=10).status_code == 200
    assert second.server_ports() == [], "the second one starts no server of its own"

    env = {k: v for k, v in os.environ.items() if k not in ENV_DROPPED}
    env.update(DEV_SERVERS="embedded", DEV_DATA_DIR=str(data_dir), PORT=str(free_port()))
    third = subprocess.run(["make", "dev"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert third.returncode != 0 and "another make dev" in third.stderr
    stop_dev(second, signal.SIGINT, group=True)
    assert requests.get(first.url + "/health", timeout=10).status_code == 200, "stopping one left the other alone"


def test_invalid_setting_refuses_to_start_with_one_line_naming_it(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROPPED}
    env.update(DEV_DATA_DIR=str(data_dir), FLAGS_ENV="not a valid name!", PORT=str(free_port()))
    env["PYTHONPATH"] = f"{REPO / 'runtime'}:{REPO}"
    done = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "local.server"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "FLAGS_ENV" in done.stderr
    assert not data_dir.exists(), "nothing was started"


# The embedded-server library itself (used by make dev and every suite).


@pytest.fixture(params=["embedded", "system"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def redis_command(port: int, *words: str) -> bytes:
    import redis

    return redis.Redis(port=port, socket_timeout=2).execute_command(*words)  # type: ignore[no-any-return]


def test_free_port_is_free_and_never_a_usual_one() -> None:
    ports = {free_port() for _ in range(20)}

    assert not ports & {6379, 5432}
    assert not any(port_listening(port) for port in ports)


def test_redis_with_a_data_dir_keeps_its_data_across_a_restart_on_the_same_port(kind: str) -> None:
    with servers.running_redis(kind, persistent=True) as server:
        redis_command(server.port, "SET", "kept", "yes")
        server.stop()
        again = server.restart()
        assert (again.port, again.kind) == (server.port, server.kind)
        assert redis_command(again.port, "GET", "kept") == b"yes"

    assert not again.alive and not again.data_dir.exists(), "the throwaway folder goes with the block"


def test_postgres_survives_sigkill_and_restarts_with_its_data(kind: str) -> None:
    import psycopg

    with servers.running_postgres(kind) as server:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        server.kill()
        assert not server.alive
        again = server.restart()
        with psycopg.connect(again.url, autocommit=True) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == (42,)

    assert pids_alive([server.pid, again.pid]) == [] and not port_listening(again.port)


def test_a_paused_redis_accepts_but_never_answers_until_resumed() -> None:
    with servers.running_redis("embedded") as server:
        server.pause()
        with socket.create_connection((server.host, server.port), timeout=0.3) as conn:
            conn.sendall(b"PING\r\n")
            with pytest.raises(TimeoutError):
                conn.recv(16)
            server.resume()
            conn.settimeout(5)
            assert conn.recv(16) == b"+PONG\r\n"


def test_stop_leaves_no_process_of_the_server_group() -> None:
    import psycopg

    server = servers.postgres_for_tests("embedded")
    conn = psycopg.connect(server.url, autocommit=True)  # a backend process of the server
    backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
    server.stop()
    conn.close()

    assert pids_alive([server.pid, backend]) == []
    assert not port_listening(server.port)


def test_a_data_dir_the_server_user_cannot_reach_is_refused_with_a_hint() -> None:
    if os.geteuid() != 0:
        unavailable_here("only root runs PostgreSQL as another user")
    hidden = Path(tempfile.mkdtemp())  # mode 700, owned by root, like `mktemp -d`
    try:
        with pytest.raises(DataDirError, match="not reachable"):
            start_postgres(data_dir=hidden / "data", prefer="embedded")
    finally:
        shutil.rmtree(hidden)


def test_the_checkout_links_its_data_to_a_world_traversable_folder() -> None:
    clone = Path(tempfile.mkdtemp())  # a clone inside `mktemp -d`
    root = dirs.data_root(checkout=clone)
    try:
        assert (clone / ".local" / "data").resolve() == root
        assert root != dirs.default_data_root(REPO)
        assert dirs.can_traverse(root, dirs.server_user())
    finally:
        shutil.rmtree(clone)
        shutil.rmtree(root)


def test_bundled_postgres_runs_from_a_virtualenv_only_root_can_enter(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        unavailable_here("only root runs PostgreSQL as another user")
    hidden = Path(tempfile.mkdtemp())
    site = binaries._package_dir("pgserver").parent
    for name in ("pgserver", "pgserver.libs"):
        shutil.copytree(site / name, hidden / name, copy_function=os.link)
    monkeypatch.setattr(binaries, "_package_dir", lambda name: hidden / name)
    mirror = dirs.shared_base().glob(f"flagservice-pginstall-*-{binaries._digest(hidden / 'pgserver' / 'pginstall')}")
    try:
        with servers.running_postgres("embedded") as server:
            assert hidden not in Path(os.readlink(f"/proc/{server.pid}/exe")).parents
    finally:
        for folder in [hidden, *mirror]:
            shutil.rmtree(folder)


def test_reset_stops_servers_left_on_its_data_and_nothing_else() -> None:
    root = servers.traversable_tmp_dir("flagservice-reset-")
    ours = start_redis(data_dir=root / "redis-6", prefer="embedded")
    other = servers.redis_for_tests("embedded")
    try:
        lock = dirs.hold_lock(root / "redis-6.lock")
        with pytest.raises(DataDirError, match="stop it first"):
            embedded.reset(root)
        os.close(lock)  # type: ignore[arg-type]
        embedded.reset(root)
        assert not root.exists()
        assert pids_alive([ours.pid, other.pid]) == [other.pid]
    finally:
        ours.stop()
        other.stop()
