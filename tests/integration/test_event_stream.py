"""The local event stream (CONTRACT.md section 5) against real Redis and PostgreSQL: catch-up on connect,
one event per change in revision order, heartbeats, replayed writes after a Redis outage, CORS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.flags.model import FlagDefinition
from flagservice.service import FlagService
from tests import servers
from tests.conftest import clean_database, redis_cache

HEARTBEAT = 0.5
REPO = Path(__file__).resolve().parents[2]


class Stream:
    """One raw SSE connection, read line by line."""

    def __init__(self, port: int, query: str = "", headers: str = "") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(f"GET /events{query} HTTP/1.1\r\nHost: x\r\nOrigin: http://page\r\n{headers}\r\n".encode())
        self.file = self.sock.makefile("rb")

    def head(self) -> list[str]:
        lines = []
        while (line := self.file.readline().decode().rstrip("\r\n")) != "":
            lines.append(line)
        return lines

    def next_block(self, timeout: float = 5.0) -> list[str]:
        """The next event or comment (lines up to a blank line)."""
        self.sock.settimeout(timeout)
        block = []
        while (line := self.file.readline().decode().rstrip("\n")) != "" or not block:
            if line:
                block.append(line)
        return block

    def next_event(self, timeout: float = 5.0) -> tuple[int, dict[str, object]]:
        while True:
            block = self.next_block(timeout)
            fields = dict(line.split(": ", 1) for line in block if not line.startswith(":") and ": " in line)
            if "id" in fields:
                return int(fields["id"]), json.loads(fields["data"])

    def close(self) -> None:
        self.sock.close()


def seen_by_stream(port: int, revision: int) -> None:
    """Wait until the stream process has read `revision` from Redis (it polls every 50 ms; a busy machine may
    not run it for longer than any fixed sleep): a stream opened behind it announces revisions until that one."""
    stream = Stream(port, "?since=0")
    stream.head()
    while stream.next_event()[0] < revision:
        pass
    stream.close()


@pytest.fixture
def world(postgres_url: str) -> Iterator[tuple[FlagService, int, servers.ServerProcess]]:
    clean_database(postgres_url)
    redis_server = servers.redis_for_tests()
    cache = redis_cache(redis_server.url)
    service = FlagService(PostgresFlagRepository.connect(postgres_url), cache)
    path = f"{REPO / 'runtime'}:{REPO}"
    env = {**os.environ, "PYTHONPATH": path, "REDIS_URL": redis_server.url, "FLAGS_ENV": cache._env}  # noqa: SLF001
    child = subprocess.Popen(
        [sys.executable, "-m", "local.events", "--port", "0", "--heartbeat", str(HEARTBEAT)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    port = int(child.stdout.readline().split()[1])
    yield service, port, redis_server
    child.terminate()
    child.wait(timeout=5)
    redis_server.resume()
    redis_server.stop()


def define(key: str, enabled: bool = True) -> FlagDefinition:
    return FlagDefinition.model_validate({"key": key, "enabled": enabled})


def test_a_client_behind_the_current_revision_gets_an_event_at_once_and_then_one_per_change(
    world: tuple[FlagService, int, servers.ServerProcess],
) -> None:
    service, port, _ = world
    first = service.put_flag(define("kill"), actor="t", if_match=None)
    seen_by_stream(port, first.revision)
    stream = Stream(port, f"?since={first.revision - 1}")
    head = stream.head()
    assert head[0] == "HTTP/1.1 200 OK" and "Content-Type: text/event-stream" in head
    assert "Access-Control-Allow-Origin: *" in head
    assert stream.next_event()[0] == first.revision  # caught up at once
    second = service.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    revision, data = stream.next_event()
    assert revision == second.revision and data["type"] == "refetchEvaluation" and data["etag"] == str(revision)
    stream.close()


def test_a_current_client_gets_only_heartbeats_until_a_change(
    world: tuple[FlagService, int, servers.ServerProcess],
) -> None:
    service, port, _ = world
    written = service.put_flag(define("kill"), actor="t", if_match=None)
    seen_by_stream(port, written.revision)
    stream = Stream(port, headers=f"Last-Event-ID: {written.revision}\r\n")
    stream.head()
    assert stream.next_block() == ["retry: 500"]
    assert stream.next_block() == [f": {written.revision}"]  # a comment after the heartbeat, not an event
    stream.close()


def test_a_write_made_while_redis_was_down_is_announced_once_replayed(
    world: tuple[FlagService, int, servers.ServerProcess],
) -> None:
    service, port, redis_server = world
    written = service.put_flag(define("kill"), actor="t", if_match=None)
    seen_by_stream(port, written.revision)
    stream = Stream(port)
    stream.head()
    stream.next_event()
    # Given Redis paused while the kill switch is written (its cache step fails, the outbox keeps it)
    redis_server.pause()
    killed = service.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    redis_server.resume()
    # When the sync replays the outbox (deployed: its next pass; here, run now)
    service.reads.on_suspect()
    # Then the stream announces the write
    assert stream.next_event()[0] == killed.revision
    stream.close()


def test_a_preflight_and_unknown_routes(world: tuple[FlagService, int, servers.ServerProcess]) -> None:
    _, port, _ = world
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"OPTIONS /events HTTP/1.1\r\nHost: x\r\nOrigin: http://page\r\n\r\n")
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 204") and "Access-Control-Allow-Origin: *" in answer
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).decode().startswith("HTTP/1.1 404")
