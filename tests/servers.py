"""Real Redis and PostgreSQL for the test suites, through the same library `make dev` uses (embedded.py).

Which binaries: TEST_REDIS_SERVER / TEST_POSTGRES_SERVER (`system` or `embedded`), else DEV_SERVERS,
else `system` (the machine's, falling back to the pip-packaged ones where none is installed).
`redis_kinds()` lists both kinds present, to run the cache contract suite against Redis 6.2 and 7.x.

Session fixtures look like:

    @pytest.fixture(scope="session")
    def redis_server():
        with servers.running_redis() as server:
            yield server
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from local.binaries import system_postgres, system_redis
from local.embedded import ServerProcess, free_port, start_postgres, start_redis
from local.processes import pid_alive, running_servers, wait_gone
from local.redis_cluster import RedisClusterNodes, start_redis_cluster

__all__ = [
    "RedisClusterNodes",
    "ServerProcess",
    "create_database",
    "discard",
    "free_port",
    "pid_alive",
    "pids_alive",
    "port_listening",
    "postgres_for_tests",
    "postgres_kinds",
    "redis_cluster_for_tests",
    "redis_for_tests",
    "redis_kinds",
    "running_postgres",
    "running_redis",
    "server_kind",
    "traversable_tmp_dir",
    "wait_gone",
]


def server_kind(name: str) -> str:
    """The kind of binaries the suite asked for `name` ("redis" or "postgres")."""
    chosen = os.environ.get(f"TEST_{name.upper()}_SERVER") or os.environ.get("DEV_SERVERS") or "system"
    if chosen not in ("system", "embedded"):
        raise ValueError(f"TEST_{name.upper()}_SERVER must be system or embedded, not {chosen!r}")
    return chosen


def redis_kinds() -> list[str]:
    """ "embedded" (Redis 6.2, always there) and "system" when a redis-server is on PATH (7.x on Debian)."""
    return ["embedded", *(["system"] if system_redis() else [])]


def postgres_kinds() -> list[str]:
    return ["embedded", *(["system"] if system_postgres() else [])]


def traversable_tmp_dir(prefix: str = "flagservice-test-") -> Path:
    """A fresh folder an unprivileged server user can reach (pytest's tmp_path is root's and mode 700)."""
    base = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else Path(tempfile.gettempdir())
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o755)
    return path


_THROWAWAY: dict[Path, int] = {}  # folder -> pid of the process that made it (a forked child never deletes it)


def _throwaway(folder: Path, start: Callable[[], ServerProcess]) -> ServerProcess:
    """Start a server on a throwaway `folder`, deleted when the test session ends (or now if it never starts).

    Not on stop(): a stopped server is restarted with its data (`stop()`, then `restart()`).
    """
    try:
        server = start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    _THROWAWAY[folder] = os.getpid()
    return server


def discard(folder: Path) -> None:
    """Stop every server of this process whose data is under `folder`, then delete it."""
    for server in running_servers():
        if folder in server.data_dir.parents:
            server.stop()
    shutil.rmtree(folder, ignore_errors=True)
    _THROWAWAY.pop(folder, None)


@atexit.register
def _discard_all() -> None:
    for folder, owner in list(_THROWAWAY.items()):
        if owner == os.getpid():
            discard(folder)


def redis_for_tests(prefer: str | None = None, *, persistent: bool = False, port: int | None = None) -> ServerProcess:
    """A throwaway redis-server on a free port; `persistent` keeps an append-only file across restart()."""
    kind = prefer or server_kind("redis")
    if not persistent:
        return start_redis(prefer=kind, port=port)
    folder = traversable_tmp_dir("flagservice-redis-")
    return _throwaway(folder, lambda: start_redis(data_dir=folder / "data", prefer=kind, port=port))


def redis_cluster_for_tests(prefer: str | None = None, *, node_timeout_ms: int = 3000) -> RedisClusterNodes:
    """A Redis Cluster (cluster mode enabled) of 3 primaries, each with a replica, on loopback; about 2.5 s.

    The session's nodes time out after 3 s, so a test may pause a node for a second without a failover.
    """
    return start_redis_cluster(3, 1, prefer=prefer or server_kind("redis"), node_timeout_ms=node_timeout_ms)


def postgres_for_tests(prefer: str | None = None, *, port: int | None = None) -> ServerProcess:
    """A throwaway cluster (fsync off) on a free port; its data survives stop() and restart() until the session ends."""
    folder = traversable_tmp_dir("flagservice-pg-")
    kind = prefer or server_kind("postgres")
    return _throwaway(folder, lambda: start_postgres(data_dir=folder / "data", prefer=kind, port=port))


@contextmanager
def running_redis(prefer: str | None = None, *, persistent: bool = False) -> Iterator[ServerProcess]:
    """A Redis for a `with` block; gone, data and all, when it ends (even if the block restarted it)."""
    server = redis_for_tests(prefer, persistent=persistent)
    try:
        yield server
    finally:
        server.stop()
        if persistent:
            discard(server.data_dir.parent)


@contextmanager
def running_postgres(prefer: str | None = None) -> Iterator[ServerProcess]:
    """A PostgreSQL for a `with` block; gone, data and all, when it ends (even if the block restarted it)."""
    server = postgres_for_tests(prefer)
    try:
        yield server
    finally:
        discard(server.data_dir.parent)


def create_database(server: ServerProcess | str, name: str | None = None, *, icu_locale: str | None = None) -> str:
    """A new empty database on `server` (or on the server of a URL), for isolation per module or test; its URL.

    `icu_locale` (for example "en-US") makes the database's default collation that ICU locale, as on
    RDS, whose default is en_US.UTF-8: "a-b" < "a_b" < "aB" < "a0" there, unlike byte order (C).
    ICU needs no locale generated on the machine (initdb --locale=en_US.UTF-8 does); PostgreSQL 15+.
    """
    import psycopg

    url = server if isinstance(server, str) else server.url
    name = name or f"test_{uuid.uuid4().hex[:12]}"
    options = f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}' TEMPLATE template0" if icu_locale else ""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{options}'.encode())
    return url.rsplit("/", 1)[0] + f"/{name}"


def port_listening(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pids_alive(pids: Iterable[int]) -> list[int]:
    """The pids of `pids` still running (zombies count as gone)."""
    return [pid for pid in pids if pid_alive(pid)]
