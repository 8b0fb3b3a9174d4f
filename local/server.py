"""`make dev`: embedded Redis and PostgreSQL, migrations, demo flags, then the Lambda handler over HTTP.

Settings (environment): PORT (3000), WORKERS (CPUs), REDIS_URL and DATABASE_URL (each replaces its
embedded server), ADMIN_TOKEN (generated and printed once when unset), FLAGS_ENV, DEV_SERVERS
(`system` prefers the machine's binaries, `embedded` forces the pip-packaged ones), DEV_DATA_DIR
(default: the checkout's `.local/data`), DEV_HANDLER (default flagservice.handler.lambda_handler),
DEV_EVENTS (`sse`, the default, or `channel`: the stand-in of the deployed push channel, local/channel.py).
Ctrl-C or SIGTERM stops the workers, then every server this process started, by pid.
"""

from __future__ import annotations

import errno
import importlib
import os
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from flagservice.settings import SettingsError, load_settings
from local import dirs
from local.binaries import Binaries, postgres_binaries, redis_binaries
from local.dirs import DataDirError
from local.embedded import ServerProcess, ServerStartError, start_postgres, start_redis
from local.gateway import LambdaGateway
from local.prefork.signals import StopRequestedError, die_with_parent, ignore_stop_signals, install_stop_signals
from local.prefork.supervisor import PreforkServer
from local.serve import DEFAULT_HANDLER, HOST, configure_logging, load_handler
from local.setup import SetupError, run_setup

PLACEHOLDERS = {"REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": "postgresql://127.0.0.1:1/postgres"}


class OptionError(Exception):
    """A server option is invalid; the message is one line naming the variable."""


@dataclass
class Options:
    port: int
    workers: int
    prefer: str
    handler: str
    data_dir: str | None


@dataclass
class Running:
    """What this process started and holds, released in reverse order by `release()`."""

    servers: list[ServerProcess] = field(default_factory=list)
    locks: list[int] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)
    children: list[subprocess.Popen[str]] = field(default_factory=list)

    def release(self) -> None:
        for sock in self.sockets:
            sock.close()
        for child in self.children:
            child.terminate()
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
        for server in reversed(self.servers):
            server.stop()
        for fd in self.locks:
            os.close(fd)


def _int_option(environ: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise OptionError(f"invalid setting {name}: expected a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def read_options(environ: dict[str, str]) -> Options:
    """The server's own variables, checked before anything starts."""
    prefer = environ.get("DEV_SERVERS", "").strip() or "system"
    if prefer not in ("system", "embedded"):
        raise OptionError(f"invalid setting DEV_SERVERS: expected system or embedded, got {prefer!r}")
    return Options(
        port=_int_option(environ, "PORT", 3000, 1, 65535),
        workers=_int_option(environ, "WORKERS", os.cpu_count() or 1, 1, 256),
        prefer=prefer,
        handler=environ.get("DEV_HANDLER", "").strip() or DEFAULT_HANDLER,
        data_dir=environ.get("DEV_DATA_DIR", "").strip() or None,
    )


def check_settings(environ: dict[str, str]) -> None:
    """Validate the handler's settings before starting anything (placeholders for URLs still to come)."""
    filled = {**PLACEHOLDERS, "ADMIN_TOKEN": "x" * 32, **{k: v for k, v in environ.items() if v}}
    load_settings(filled)


def _locked(root: Path, binaries: Binaries, name: str, running: Running, variable: str) -> Path:
    """The versioned data folder of one embedded server, locked so a second `make dev` cannot share it."""
    data_dir = root / f"{name}-{binaries.major}"
    fd = dirs.hold_lock(root / f"{name}-{binaries.major}.lock")
    if fd is None:
        holder = dirs.lock_holder(root / f"{name}-{binaries.major}.lock")
        raise DataDirError(f"another make dev (pid {holder}) uses {data_dir}: stop it, or set {variable}")
    running.locks.append(fd)
    return data_dir


def start_servers(options: Options, running: Running) -> None:
    """Start the embedded servers whose URL is not given, and put their URLs in the environment."""
    given = {name: bool(os.environ.get(name)) for name in ("REDIS_URL", "DATABASE_URL")}
    if all(given.values()):
        return
    root = dirs.data_root(override=options.data_dir)
    if not given["REDIS_URL"]:
        binaries = redis_binaries(options.prefer)
        data_dir = _locked(root, binaries, "redis", running, "REDIS_URL")
        extra = ("--maxmemory", "256mb", "--maxmemory-policy", "volatile-lru")  # as ElastiCache is configured
        running.servers.append(start_redis(data_dir=data_dir, prefer=binaries.kind, extra_args=extra))
        os.environ["REDIS_URL"] = running.servers[-1].url
    if not given["DATABASE_URL"]:
        binaries = postgres_binaries(options.prefer)
        data_dir = _locked(root, binaries, "postgres", running, "DATABASE_URL")
        running.servers.append(start_postgres(data_dir=data_dir, prefer=binaries.kind, durable=True))
        os.environ["DATABASE_URL"] = running.servers[-1].url
    for server in running.servers:
        print(f"  {server.name:<9}{server.url}  ({server.kind} {server.version}, data in {server.data_dir})")


def ensure_admin_token() -> None:
    """Generate the local admin token when none is given, and print it this once (never logged again)."""
    if os.environ.get("ADMIN_TOKEN"):
        print("  admin:   bearer token from ADMIN_TOKEN")
        return
    os.environ["ADMIN_TOKEN"] = secrets.token_urlsafe(32)
    print(f"  admin:   Authorization: Bearer {os.environ['ADMIN_TOKEN']}  (generated; printed only now)")


def bind(options: Options, running: Running) -> PreforkServer:
    """Import the handler (once, before workers fork) and take the port first, so a busy PORT fails fast."""
    handler = load_handler(options.handler)
    warm = getattr(importlib.import_module(handler.__module__), "warm", None)
    try:
        server = PreforkServer(
            LambdaGateway(handler), host=HOST, port=options.port, workers=options.workers, on_worker_start=warm
        )
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise OptionError(f"invalid setting PORT: {options.port} is already in use") from None
        raise
    running.sockets.append(server.sock)
    return server


def _spawn_events(running: Running, port: int, module: str = "local.events", *extra: str) -> list[int] | None:
    """Start `module` (events.py, channel.py) on `port` (0: any free one); the ports it printed, or None."""
    parent = os.getpid()
    child = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: die_with_parent(parent),  # noqa: PLW1509 - only sets the parent-death signal
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    if len(line) < 2 or line[0] != "listening":
        child.wait(timeout=5)
        return None
    running.children.append(child)
    return [int(port) for port in line[1:]]


def start_event_stream(options: Options, running: Running) -> None:
    """The SSE process beside the workers (events.py), advertised to the handler through EVENT_STREAM_URL.

    It listens on EVENTS_PORT, by default PORT + 1, so a browser's stream reconnects to the same place
    after `make dev` restarts; a free port is taken only when that one is busy.
    """
    wanted = int(os.environ.get("EVENTS_PORT") or (options.port + 1 if options.port else 0))
    if os.environ.get("DEV_EVENTS") == "channel":
        start_push_channel(running, wanted)
        return
    ports = _spawn_events(running, wanted) or _spawn_events(running, 0)
    if ports is None:
        raise OptionError("the event stream did not start")
    os.environ.setdefault("EVENT_STREAM_URL", f"http://{HOST}:{ports[0]}/events")
    print(f"  events:  {os.environ['EVENT_STREAM_URL']}  (Server-Sent Events)")


def start_push_channel(running: Running, wanted: int) -> None:
    """DEV_EVENTS=channel: the stand-in of the deployed push channel (channel.py) instead of the SSE stream.

    The workers publish to it (PUSH_PUBLISH_URL) and the bulk answer advertises it (PUSH_CHANNEL_URL) with a
    token under PUSH_TOKEN_SECRET, generated here unless given, exactly as deployed (docs/local.md). Its
    publish endpoint listens on DEV_PUBLISH_PORT (default: any free port). With both URLs given, it uses
    that channel (another `make dev`'s on the same stores: deployed, an environment has one channel).
    """
    os.environ.setdefault("PUSH_TOKEN_SECRET", secrets.token_urlsafe(32))
    if os.environ.get("PUSH_CHANNEL_URL") and os.environ.get("PUSH_PUBLISH_URL"):
        print(f"  events:  {os.environ['PUSH_CHANNEL_URL']}  (a push channel stand-in started elsewhere)")
        return
    publish = ("--publish-port", os.environ.get("DEV_PUBLISH_PORT") or "0")
    ports = _spawn_events(running, wanted, "local.channel", *publish) or _spawn_events(
        running, 0, "local.channel", *publish
    )
    if ports is None or len(ports) != 2:
        raise OptionError("the push channel stand-in did not start")
    os.environ["PUSH_CHANNEL_URL"] = f"ws://{HOST}:{ports[0]}/event/realtime"
    os.environ["PUSH_PUBLISH_URL"] = f"http://{HOST}:{ports[1]}/event"
    print(f"  events:  {os.environ['PUSH_CHANNEL_URL']}  (stand-in of the AppSync Events channel)")


def start(options: Options, running: Running) -> None:
    """Everything before serving (port, servers, settings, migrations, demo flags), then serve until stopped."""
    server = bind(options, running)
    print("flagservice local server (make dev)", flush=True)
    start_servers(options, running)
    ensure_admin_token()
    start_event_stream(options, running)
    load_settings()
    seeded = run_setup(os.environ["DATABASE_URL"])
    print(f"  demo:    {'seeded ' + ', '.join(seeded) if seeded else 'not seeded (the database was not new)'}")
    print(f"  console: http://{HOST}:{server.port}/console  (sign in with the admin token)")
    print(f"serving http://{HOST}:{server.port} with {options.workers} worker processes; Ctrl-C stops everything")
    sys.stdout.flush()
    server.run()


def main() -> int:
    configure_logging()
    os.environ.pop("AWS_LAMBDA_FUNCTION_NAME", None)  # set, the handler would act as deployed (IAM auth)
    try:
        options = read_options(dict(os.environ))
        check_settings(dict(os.environ))
    except (OptionError, SettingsError) as error:
        print(error, file=sys.stderr)
        return 2
    install_stop_signals()
    running = Running()
    try:
        start(options, running)
    except (KeyboardInterrupt, StopRequestedError):
        pass
    except (OptionError, SettingsError, DataDirError, ServerStartError, SetupError) as error:
        print(f"make dev: {error}", file=sys.stderr)
        return 1
    finally:
        ignore_stop_signals()
        running.release()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
