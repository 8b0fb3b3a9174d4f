"""Open-loop load for drills and the consistency harnesses: requests on a fixed schedule, latency from the schedule.

Each `Stream` is one kind of request to one server at a fixed rate: request i is due at
start + i / rate whatever the server does, so a stalled server cannot hide by receiving fewer
requests (no coordinated omission). A request's latency runs from the time it was due, so time spent
queued behind busy connections counts. One thread drives every stream of an `OpenLoop` with one
`select`, over keep-alive connections opened on demand without blocking (at most `connections` per
stream; a server that stops accepting must not stall the generator); a kept connection the server
closed while idle is retried on a new one, keeping the due time.

Every answer is kept as a `Reply`: when it was due, when its bytes left (`sent`: whether a read
started after a write's acknowledgement is judged by this), when it ended, status, headers, body.
A request with no answer within `timeout` of its due time, or a broken connection, is status 0.
The generator reports its own lag behind schedule (how late it noticed a request was due), so a
run whose generator could not keep up says so. Only 127.0.0.1 is addressed; times are
`time.monotonic()` (one clock for every process of the machine, as in load.py).
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.common.http_load import HOST, ResponseParser

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
    idle: list[_Conn] = field(default_factory=list)
    busy: int = 0

    def finished(self, reply: Reply) -> None:
        self.replies.append(reply)
        self.on_reply(reply)


class _Conn:
    """A keep-alive client connection, connected without blocking (a stalled server must not stall the loop)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        code = self.sock.connect_ex((HOST, port))
        if code not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise OSError(code, os.strerror(code))
        self.connected = code == 0
        self.port = port
        self.parser = ResponseParser()
        self.uses = 0

    def close(self) -> None:
        self.sock.close()


@dataclass(eq=False)
class _InFlight:
    stream: Stream
    conn: _Conn
    tag: str
    request: bytes
    scheduled: float
    sent: float = 0.0  # 0 while the connection is being made


class OpenLoop:
    """Drives `streams` on one thread from start() until stop(); stop() lets in-flight requests finish (or time out)."""

    def __init__(self, streams: list[Stream], *, timeout: float = 5.0, connections: int = 16) -> None:
        self.streams, self.timeout, self.connections = streams, timeout, connections
        self.lag: list[float] = []
        self._selector = selectors.SelectSelector()  # epoll rounds its timeout up to whole milliseconds
        self._in_flight: dict[_Conn, _InFlight] = {}
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
            self._schedule(time.monotonic())
            self._step()
        while self._in_flight or any(stream.due for stream in self.streams):
            self._step()  # after stop: no new requests; what was due is sent, and everything ends or times out
        for stream in self.streams:
            for conn in stream.idle:
                conn.close()
            stream.idle.clear()

    def _step(self) -> None:
        self._send_due()
        self._wait()
        self._expire(time.monotonic())

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
                self._start(stream, self._kept(stream), *stream.build(), scheduled)

    @staticmethod
    def _kept(stream: Stream) -> _Conn | None:
        """An idle kept connection to the stream's port; one to a port the stream has left (a server replaced
        by a new process, as a rolling restart does) is closed, so nothing is sent to the old process again."""
        while stream.idle:
            conn = stream.idle.pop()
            if conn.port == stream.port:
                return conn
            conn.close()
        return None

    def _start(self, stream: Stream, conn: _Conn | None, tag: str, request: bytes, scheduled: float) -> None:
        """Send one request on `conn`, or on a new connection once it is made (a failure is a failed reply)."""
        try:
            conn = conn or _Conn(stream.port)
        except OSError as error:
            self._failed(stream, tag, scheduled, time.monotonic(), type(error).__name__)
            return
        conn.parser.reset()
        flight = _InFlight(stream, conn, tag, request, scheduled)
        self._in_flight[conn] = flight
        stream.busy += 1
        if conn.connected:
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            self._send(flight)
        else:
            self._selector.register(conn.sock, selectors.EVENT_WRITE, conn)

    def _send(self, flight: _InFlight) -> None:
        try:
            flight.conn.sock.sendall(flight.request)  # small: it fits the socket's buffer at once
        except OSError as error:
            self._fail(flight, type(error).__name__)
            return
        flight.sent = time.monotonic()
        flight.conn.uses += 1

    def _connected(self, flight: _InFlight) -> None:
        error = flight.conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self._fail(flight, os.strerror(error))
            return
        flight.conn.connected = True
        self._selector.modify(flight.conn.sock, selectors.EVENT_READ, flight.conn)
        self._send(flight)

    def _wait(self) -> None:
        """Until the next request is due (at most TICK), handle what the sockets have."""
        timeout = TICK
        if not self._stop.is_set():
            next_due = min(self.started + stream.issued / stream.rate for stream in self.streams)
            timeout = min(max(0.0, next_due - time.monotonic()), TICK)
        if not self._in_flight:
            time.sleep(timeout)
            return
        for key, events in self._selector.select(timeout):
            flight = self._in_flight.get(key.data)
            if flight is None:
                continue
            if events & selectors.EVENT_WRITE:
                self._connected(flight)
            else:
                self._receive(flight)

    def _receive(self, flight: _InFlight) -> None:
        conn = flight.conn
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data and conn.uses > 1 and not conn.parser.buffer:
            self._retire(flight)  # a kept connection the server closed while idle: as any client, retry
            self._start(flight.stream, None, flight.tag, flight.request, flight.scheduled)
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
        self._failed(flight.stream, flight.tag, flight.scheduled, flight.sent or time.monotonic(), error)

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
            self._fail(flight, "Timeout" if flight.sent else "ConnectTimeout")
        for stream in self.streams:
            while stream.due and now - stream.due[0] > self.timeout:
                self._failed(stream, "", stream.due.popleft(), now, "NotSent")  # every connection stayed busy

    def lag_summary(self) -> dict[str, float | None]:
        """How late the generator itself noticed requests were due (its own slowness, not the servers')."""
        ordered = sorted(self.lag)
        if not ordered:
            return {"p99": None, "max": None}
        return {"p99": round(ordered[int(0.99 * (len(ordered) - 1))], 4), "max": round(ordered[-1], 4)}
