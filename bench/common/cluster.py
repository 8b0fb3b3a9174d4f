"""A local cluster for drills and the propagation harness: one Redis, one PostgreSQL, N local servers.

Each server is its own `python -m local.server` process with WORKERS=1, so each is one
"container" (its own L1 cache, breaker and pools) that a harness can address, freeze (SIGSTOP) and
thaw on its own. All of them share the Redis (optionally behind a `ProxyProcess`, for faults on
the wire, and optionally with a replica, `--replicaof` the primary, for failovers) and the
PostgreSQL (optionally behind a proxy of its own, and optionally with pg_stat_statements, so
database reads are counted by PostgreSQL itself). Everything listens on 127.0.0.1 and is stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench import REPO
from bench.common.client import Answer, request
from bench.common.faultproxy import ProxyProcess
from flagservice.adapters.migrations import migrate
from local.embedded import ServerProcess, free_port, start_postgres, start_redis

ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123456789"
READY_SECONDS = 60.0
# The flag read of PostgresFlagRepository.get, as pg_stat_statements normalizes it.
FLAG_READ = "SELECT version, definition, updated_at FROM flags WHERE key = $1%"
DROPPED_ENV = ("AWS_LAMBDA_FUNCTION_NAME", "DB_SECRET_ARN", "REDIS_AUTH_SECRET_ARN", "DEV_HANDLER", "PORT")


@dataclass(frozen=True)
class ClusterOptions:
    servers: int = 4
    proxied_redis: bool = False  # the servers reach Redis through a fault proxy
    redis_replica: bool = False  # a second redis-server replicating the first (for failover drills)
    proxied_postgres: bool = False  # the servers reach PostgreSQL through a fault proxy
    counted_postgres: bool = False  # pg_stat_statements loaded
    handler: str | None = None  # DEV_HANDLER of every server (None: the real Lambda handler)
    env: tuple[tuple[str, str], ...] = ()  # more settings for every server (CONTRACT.md section 4)
    flags_env: str = "bench"


@dataclass
class FlagServer:
    """One local server process (one worker: one container) on its own port."""

    index: int
    port: int
    process: subprocess.Popen[bytes]
    frozen: bool = False

    def get(self, path: str, *, timeout: float = 10.0) -> Answer:
        return request(self.port, "GET", path, timeout=timeout)

    def admin(
        self, method: str, path: str, body: Any = None, *, timeout: float = 10.0, headers: dict[str, str] | None = None
    ) -> Answer:
        sent = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json", **(headers or {})}
        return request(self.port, method, path, body=body, headers=sent, timeout=timeout)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def freeze(self) -> None:
        """SIGSTOP the server and its worker, as Lambda freezes a container between invocations."""
        self._signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        """SIGTERM to the group (the master stops its worker), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        self.thaw()
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait(5)


@dataclass
class Cluster:
    redis: ServerProcess
    postgres: ServerProcess
    workdir: Path
    options: ClusterOptions
    proxy: ProxyProcess | None = None
    servers: list[FlagServer] = field(default_factory=list)
    replica: ServerProcess | None = None
    postgres_proxy: ProxyProcess | None = None

    @property
    def redis_url_for_servers(self) -> str:
        return f"redis://127.0.0.1:{self.proxy.port}/0" if self.proxy else self.redis.url

    @property
    def postgres_url_for_servers(self) -> str:
        if self.postgres_proxy is None:
            return self.postgres.url
        return self.postgres.url.replace(f":{self.postgres.port}/", f":{self.postgres_proxy.port}/", 1)

    def redis_admin(self, timeout: float = 5.0) -> redis.Redis:
        """A client straight to Redis (never through the proxy), for the harness's own commands."""
        return redis.Redis.from_url(self.redis.url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.postgres.url, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def flag_reads(self) -> int:
        """Single-flag reads PostgreSQL has executed since the last reset (pg_stat_statements)."""
        rows = self.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s", (FLAG_READ,))
        return int(rows[0][0])

    def reset_statement_counts(self) -> None:
        self.sql("SELECT pg_stat_statements_reset()")

    def audit_rows(self) -> int:
        return int(self.sql("SELECT count(*) FROM flag_audit")[0][0])

    def commandstats(self, timeout: float = 5.0) -> dict[str, int]:
        """Calls per Redis command since the server started (INFO commandstats; Lua's redis.call() included)."""
        stats = self.redis_admin(timeout).info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        for proxy in (self.proxy, self.postgres_proxy):
            if proxy is not None:
                proxy.stop()
        for store in (self.redis, self.replica):
            if store is not None:
                store.resume()
                store.stop()
        self.postgres.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _workdir() -> Path:
    """A folder the unprivileged PostgreSQL user can reach (a root-owned mkdtemp under /tmp is mode 700)."""
    base = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else Path(tempfile.gettempdir())
    path = Path(tempfile.mkdtemp(prefix="flagservice-bench-", dir=base))
    path.chmod(0o755)
    return path


def _postgres(workdir: Path, counted: bool, prefer: str) -> ServerProcess:
    server = start_postgres(data_dir=workdir / "postgres", prefer=prefer)
    if counted:
        server = count_statements(server)
    migrate(server.url)
    return server


def count_statements(server: ServerProcess) -> ServerProcess:
    """`server` restarted with pg_stat_statements loaded and its view created: every statement counted from then."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    server = server.restart()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return server


def _server_env(cluster: Cluster, port: int) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in DROPPED_ENV}
    env.update(
        PYTHONPATH=f"{REPO / 'runtime'}:{REPO}", PORT=str(port), WORKERS="1", ADMIN_TOKEN=ADMIN_TOKEN,
        REDIS_URL=cluster.redis_url_for_servers, DATABASE_URL=cluster.postgres_url_for_servers,
        FLAGS_ENV=cluster.options.flags_env, POWERTOOLS_METRICS_NAMESPACE="FeatureFlagsBench",
    )  # fmt: skip
    if cluster.options.handler:
        env["DEV_HANDLER"] = cluster.options.handler
    env.update(dict(cluster.options.env))
    return env


def _log_dir(cluster: Cluster) -> Path:
    """BENCH_SERVER_LOGS=<folder> keeps every server's output there (it outlives the cluster), else the workdir."""
    kept = os.environ.get("BENCH_SERVER_LOGS")
    folder = Path(kept) if kept else cluster.workdir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _spawn_server(cluster: Cluster, index: int, env: dict[str, str] | None = None) -> FlagServer:
    """Start one server; its stdout (Powertools logs and EMF metrics, large) is kept only with BENCH_SERVER_LOGS."""
    port, logs = free_port(), _log_dir(cluster)
    keep = os.environ.get("BENCH_SERVER_LOGS")
    stdout = open(logs / f"server-{index}.out", "wb") if keep else subprocess.DEVNULL  # noqa: SIM115
    stderr = open(logs / f"server-{index}.err", "wb")  # noqa: SIM115 - the child owns it
    process = subprocess.Popen(
        [sys.executable, "-m", "local.server"], cwd=REPO, env=_server_env(cluster, port) | (env or {}),
        stdout=stdout, stderr=stderr, start_new_session=True,
    )  # fmt: skip
    return FlagServer(index, port, process)


def _wait_ready(cluster: Cluster, server: FlagServer, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (_log_dir(cluster) / f"server-{server.index}.err").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"server {server.index} exited while starting:\n{log}")
        if server.get("/health", timeout=2).status == 200:
            return
        time.sleep(0.05)
    raise RuntimeError(f"server {server.index} did not answer /health within {READY_SECONDS} s")


def start_server(cluster: Cluster, index: int, env: dict[str, str] | None = None) -> FlagServer:
    """Another process for server `index`, with `env` over the cluster's settings, once it answers /health: the
    new version beside the old one in a rolling restart (the caller moves traffic to it, then stops the old)."""
    server = _spawn_server(cluster, index, env)
    try:
        _wait_ready(cluster, server, time.monotonic() + READY_SECONDS)
    except BaseException:
        server.stop()
        raise
    return server


REDIS_ARGS = ("--maxmemory", "256mb", "--maxmemory-policy", "volatile-lru")


def _start_replica(cluster: Cluster, prefer: str) -> ServerProcess:
    """A redis-server replicating the cluster's Redis, once its first sync is done."""
    primary = cluster.redis
    replica = start_redis(prefer=prefer, extra_args=(*REDIS_ARGS, "--replicaof", primary.host, str(primary.port)))
    client = redis.Redis.from_url(replica.url, socket_timeout=5)
    deadline = time.monotonic() + READY_SECONDS
    while client.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            replica.stop()
            raise RuntimeError("the Redis replica did not sync with its primary")
        time.sleep(0.05)
    return replica


def _start_proxies(cluster: Cluster, prefer: str) -> None:
    options = cluster.options
    if options.proxied_redis:
        cluster.proxy = ProxyProcess(("127.0.0.1", cluster.redis.port))
    if options.redis_replica:
        cluster.replica = _start_replica(cluster, prefer)
    if options.proxied_postgres:
        cluster.postgres_proxy = ProxyProcess(("127.0.0.1", cluster.postgres.port))


def start_cluster(options: ClusterOptions) -> Cluster:
    """Redis, PostgreSQL (migrated), the proxies and replica if asked, then every server started in parallel."""
    prefer = os.environ.get("DEV_SERVERS") or "system"
    workdir = _workdir()
    redis_server = start_redis(prefer=prefer, extra_args=REDIS_ARGS)
    try:
        cluster = Cluster(redis_server, _postgres(workdir, options.counted_postgres, prefer), workdir, options)
    except BaseException:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        _start_proxies(cluster, prefer)
        cluster.servers = [_spawn_server(cluster, i) for i in range(options.servers)]
        deadline = time.monotonic() + READY_SECONDS
        for server in cluster.servers:
            _wait_ready(cluster, server, deadline)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster(options: ClusterOptions) -> Iterator[Cluster]:
    cluster = start_cluster(options)
    try:
        yield cluster
    finally:
        cluster.stop()
