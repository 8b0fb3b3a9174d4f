"""`make dev`'s event stream (CONTRACT.md section 5): Server-Sent Events in a process of its own.

The pre-fork workers serve one request at a time, so an idle browser holding a stream open must never
hold one of them: this process serves every stream on one asyncio loop instead. It is fed by the
change signal itself: one small Redis read (the environment's revision) every POLL_SECONDS for all
clients together, never PostgreSQL. Whatever moves the revision emits an event: a write's cache step,
and the outbox replay after a Redis outage. Each event is `id: <revision>` with a `refetchEvaluation`
payload; a client whose `since` (or `Last-Event-ID`) differs from the current revision gets one at
once, so no change is missed across a connect or reconnect; a `: <revision>` comment every 15 s.

    python -m local.events --port 0 [--heartbeat 15]   # prints "listening <port>"; REDIS_URL, FLAGS_ENV
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from flagservice.adapters import redis_keys
from flagservice.settings import cluster_mode

HOST = "127.0.0.1"
POLL_SECONDS = 0.05
ERROR_POLL_SECONDS = 0.5  # cluster mode, after a failed read
HEARTBEAT_SECONDS = 15.0
RECONNECT_MS = 500  # how soon a browser reconnects after the stream ends (a server restart)
HEAD_LIMIT = 16 * 1024
HEAD_SECONDS = 10.0
CORS_HEADERS = "Content-Type, If-None-Match, X-API-Key, Last-Event-ID"


@dataclass
class Signal:
    """The current revision and every connected client's queue of revisions to announce."""

    heartbeat: float = HEARTBEAT_SECONDS
    revision: int | None = None
    changed_at: float = field(default_factory=time.time)
    clients: set[asyncio.Queue[int]] = field(default_factory=set)

    def publish(self, revision: int) -> None:
        if revision == self.revision:
            return
        self.revision, self.changed_at = revision, time.time()
        for queue in self.clients:
            queue.put_nowait(revision)


def event(revision: int, changed_at: float) -> bytes:
    data = {"type": "refetchEvaluation", "etag": str(revision), "lastModified": int(changed_at)}
    return f"id: {revision}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def poll(signal: Signal, client: aioredis.Redis | aioredis.RedisCluster, key: str) -> None:
    """Follow the revision in Redis; a failed read is simply retried (the stream stays open meanwhile). A
    cluster client refreshes its whole topology after each failure, too costly 20 times a second: it waits
    ERROR_POLL_SECONDS after one (nothing in the cache changes while it fails)."""
    after_error = ERROR_POLL_SECONDS if isinstance(client, aioredis.RedisCluster) else POLL_SECONDS
    while True:
        pause = after_error
        with contextlib.suppress(aioredis.RedisError, RedisClusterException, OSError, ValueError):
            value = await client.get(key)
            if value is not None:
                signal.publish(int(value))
            pause = POLL_SECONDS
        await asyncio.sleep(pause)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_SECONDS)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    url = urlsplit(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return Request(parts[0], url.path, parse_qs(url.query), headers)


def _cors(request: Request) -> str:
    allowed = os.environ.get("CORS_ALLOWED_ORIGINS") or "*"
    origin = request.headers.get("origin", "")
    if allowed == "*":
        return "Access-Control-Allow-Origin: *\r\n"
    return f"Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n" if origin in allowed.split(",") else ""


def _simple(status: str, request: Request, body: bytes = b"", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{_cors(request)}{extra}"
    return (head + ("Content-Type: application/json\r\n" if body else "") + "\r\n").encode() + body


def _since(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or (request.query.get("since") or [""])[0]
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


async def stream(request: Request, writer: asyncio.StreamWriter, signal: Signal) -> None:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        f"Connection: keep-alive\r\nX-Accel-Buffering: no\r\n{_cors(request)}\r\nretry: {RECONNECT_MS}\n\n"
    )
    writer.write(head.encode())
    await writer.drain()  # headers flushed at once: the client knows the stream is open
    queue: asyncio.Queue[int] = asyncio.Queue()
    signal.clients.add(queue)
    try:
        if signal.revision is not None and _since(request) != signal.revision:
            writer.write(event(signal.revision, signal.changed_at))
        while True:
            try:
                revision = await asyncio.wait_for(queue.get(), signal.heartbeat)
                writer.write(event(revision, signal.changed_at))
            except TimeoutError:
                writer.write(f": {signal.revision if signal.revision is not None else ''}\n\n".encode())
            await writer.drain()
    finally:
        signal.clients.discard(queue)


async def serve_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, signal: Signal) -> None:
    try:
        request = await read_request(reader)
        if request is None:
            return
        if request.method == "OPTIONS":
            allow = f"Access-Control-Allow-Methods: GET, OPTIONS\r\nAccess-Control-Allow-Headers: {CORS_HEADERS}\r\n"
            writer.write(_simple("204 No Content", request, extra=allow))
        elif request.path != "/events":
            body = b'{"errorCode":"NOT_FOUND","errorDetails":"no such route"}'
            writer.write(_simple("404 Not Found", request, body))
        elif request.method != "GET":
            body = b'{"errorCode":"METHOD_NOT_ALLOWED","errorDetails":"only GET"}'
            writer.write(_simple("405 Method Not Allowed", request, body, "Allow: GET\r\n"))
        else:
            await stream(request, writer, signal)
        await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def redis_client(redis_url: str) -> aioredis.Redis | aioredis.RedisCluster:
    """REDIS_CLUSTER_MODE: a cluster client (it follows the revision key's slot through MOVED and failovers;
    redis.asyncio's connects on its first command, so a cluster down at start-up is simply retried)."""
    if cluster_mode(os.environ):
        return aioredis.RedisCluster.from_url(  # one attempt per poll: the poll itself is the retry
            redis_url, socket_timeout=0.5, socket_connect_timeout=0.5, require_full_coverage=False,
            retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
    return aioredis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)


async def run(port: int, redis_url: str, env: str, heartbeat: float) -> None:
    signal = Signal(heartbeat=heartbeat)
    client = redis_client(redis_url)
    server = await asyncio.start_server(lambda r, w: serve_client(r, w, signal), HOST, port, limit=HEAD_LIMIT)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await asyncio.gather(server.serve_forever(), poll(signal, client, redis_keys.revision_key(env)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--heartbeat", type=float, default=HEARTBEAT_SECONDS)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.port, os.environ["REDIS_URL"], os.environ.get("FLAGS_ENV", "dev"), args.heartbeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
