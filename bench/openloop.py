"""Open-loop load for drills and the consistency harnesses: requests on a fixed schedule, latency from the schedule.

Each `Stream` is one kind of request to one server at a fixed rate: request i is due at
start + i / rate whatever the server does, so a stalled server cannot hide by receiving fewer
requests (no coordinated omission). A request's latency runs from the time it was due, so time spent
queued behind busy connections counts. One thread drives every stream of an `OpenLoop` with one
`select`, over keep-alive connections opened on demand (at most `connections` per stream); a kept
connection the server closed while idle is retried on a new one, keeping the due time.

Every answer is kept as a `Reply`: when it was due, when its bytes left (`sent`: whether a read
started after a write's acknowledgement is judged by this), when it ended, status, headers, body.
A request with no answer within `timeout` of its due time, or a broken connection, is status 0.
The generator reports its own lag behind schedule (how late it noticed a request was due), so a
run whose generator could not keep up says so. Only 127.0.0.1 is addressed; times are
`time.monotonic()` (one clock for every process of the machine, as in load.py).
"""

from __future__ import annotations

import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.http_load import Connection, Target

TICK = 0.01  # the longest the loop sleeps: streams are checked at least this often


@dataclass(frozen=True)
class Reply:
    """One request of a stream and its answer (status 0: none; `error` says why)."""

    stream: str
    server: int
    tag: str  # what the stream said the request was about (a flag key, for instance)
    scheduled: float
    sent: float
    end: float
    status: int
    headers: dict[str, str]
    body: bytes
    error: str = ""

    @property
    def latency(self) -> float:
        return self.end - self.scheduled


@dataclass(eq=False)
class Stream:
    """Requests to one server at `rate` per second; `build` makes each request (a tag, its bytes) when it is sent.

    `build` sees what came back before (for instance, a conditional reader sends its last ETag);
    `on_reply` is called on the loop's thread for every finished request, in the order they finish.
    """

    name: str
    server: int
    port: int
    rate: float
    build: Callable[[], tuple[str, bytes]]
    on_reply: Callable[[Reply], None] = lambda reply: None
    replies: list[Reply] = field(default_factory=list)
    due: deque[float] = field(default_factory=deque)
    issued: int = 0
    idle: list[Connection] = field(default_factory=list)
    busy: int = 0

    def finished(self, reply: Reply) -> None:
        self.replies.append(reply)
        self.on_reply(reply)


@dataclass(eq=False)
class _InFlight:
    stream: Stream
    conn: Connection
    tag: str
    request: bytes
    scheduled: float
    sent: float


class OpenLoop:
    """Drives `streams` on one thread from start() until stop(); stop() lets in-flight requests finish (or time out)."""

    def __init__(self, streams: list[Stream], *, timeout: float = 5.0, connections: int = 16) -> None:
        self.streams, self.timeout, self.connections = streams, timeout, connections
        self.lag: list[float] = []
        self._selector = selectors.SelectSelector()  # epoll rounds its timeout up to whole milliseconds
        self._in_flight: dict[Connection, _InFlight] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = 0.0

    def start(self) -> OpenLoop:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="open-loop", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 30)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            self._schedule(now)
            self._send_due()
            self._wait(now)
            self._expire(time.monotonic())
        self._drain()

    def _schedule(self, now: float) -> None:
        for stream in self.streams:
            while (due := self.started + stream.issued / stream.rate) <= now:
                stream.due.append(due)
                stream.issued += 1
                self.lag.append(now - due)

    def _send_due(self) -> None:
        for stream in self.streams:
            while stream.due and (stream.idle or stream.busy < self.connections):
                scheduled = stream.due.popleft()
                self._send(stream, stream.idle.pop() if stream.idle else None, *stream.build(), scheduled)

    def _send(self, stream: Stream, conn: Connection | None, tag: str, request: bytes, scheduled: float) -> None:
        """Write one request (on `conn`, or a new connection); a failure to connect or send is a failed reply."""
        try:
            conn = conn or Connection(Target(stream.name, stream.port), self.timeout)
            conn.parser.reset()
            conn.sock.sendall(request)
        except OSError as error:
            if conn is not None:
                conn.close()
            self._failed(stream, tag, scheduled, time.monotonic(), type(error).__name__)
            return
        conn.uses += 1
        stream.busy += 1
        self._in_flight[conn] = _InFlight(stream, conn, tag, request, scheduled, time.monotonic())
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _wait(self, now: float) -> None:
        next_due = min((self.started + s.issued / s.rate for s in self.streams), default=now + TICK)
        timeout = min(max(0.0, next_due - time.monotonic()), TICK)
        if not self._in_flight:
            time.sleep(timeout)
            return
        for key, _ in self._selector.select(timeout):
            self._receive(key.data)

    def _receive(self, conn: Connection) -> None:
        flight = self._in_flight[conn]
        try:
            data = conn.sock.recv(65536)
        except OSError:
            data = b""
        if not data and conn.uses > 1 and not conn.parser.buffer:
            self._retire(flight)  # a kept connection the server closed while idle: as any client, retry
            self._send(flight.stream, None, flight.tag, flight.request, flight.scheduled)
            return
        if not data:
            self._fail(flight, "ConnectionClosed")
            return
        try:
            complete = conn.parser.feed(data)
        except (ValueError, IndexError):
            self._fail(flight, "BadAnswer")
            return
        if complete:
            self._complete(flight)

    def _complete(self, flight: _InFlight) -> None:
        parser, stream = flight.conn.parser, flight.stream
        head = bytes(parser.buffer[: parser.header_end]).decode("latin-1").split("\r\n")[1:]
        headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in head if line)}
        reply = Reply(stream.name, stream.server, flight.tag, flight.scheduled, flight.sent, time.monotonic(),
                      parser.status, headers, parser.body())  # fmt: skip
        self._selector.unregister(flight.conn.sock)
        del self._in_flight[flight.conn]
        stream.busy -= 1
        if parser.close:
            flight.conn.close()
        else:
            stream.idle.append(flight.conn)
        stream.finished(reply)

    def _fail(self, flight: _InFlight, error: str) -> None:
        self._retire(flight)
        self._failed(flight.stream, flight.tag, flight.scheduled, flight.sent, error)

    @staticmethod
    def _failed(stream: Stream, tag: str, scheduled: float, sent: float, error: str) -> None:
        now = time.monotonic()
        stream.finished(Reply(stream.name, stream.server, tag, scheduled, min(sent, now), now, 0, {}, b"", error))

    def _retire(self, flight: _InFlight) -> None:
        self._selector.unregister(flight.conn.sock)
        del self._in_flight[flight.conn]
        flight.stream.busy -= 1
        flight.conn.close()

    def _expire(self, now: float) -> None:
        for flight in [f for f in self._in_flight.values() if now - f.scheduled > self.timeout]:
            self._fail(flight, "Timeout")
        for stream in self.streams:
            while stream.due and now - stream.due[0] > self.timeout:
                self._failed(stream, "", stream.due.popleft(), now, "NotSent")  # every connection stayed busy

    def _drain(self) -> None:
        """After stop: no new requests; queued ones are sent, and everything finishes or times out."""
        while self._in_flight or any(stream.due for stream in self.streams):
            self._send_due()
            if self._in_flight:
                for key, _ in self._selector.select(TICK):
                    self._receive(key.data)
            self._expire(time.monotonic())
        for stream in self.streams:
            for conn in stream.idle:
                conn.close()
            stream.idle.clear()

    def lag_summary(self) -> dict[str, float | None]:
        """How late the generator itself noticed requests were due (its own slowness, not the servers')."""
        ordered = sorted(self.lag)
        if not ordered:
            return {"p99": None, "max": None}
        return {"p99": round(ordered[int(0.99 * (len(ordered) - 1))], 4), "max": round(ordered[-1], 4)}
