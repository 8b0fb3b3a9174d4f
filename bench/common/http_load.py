"""HTTP load for the benchmarks: sequential, open loop (constant arrival rate), and wrk (closed loop).

- `sequential`: one keep-alive connection, one request at a time; each request's latency.
- `open_loop`: requests are due at a constant rate, whatever the server does (no coordinated
  omission): request i is due at start + i / rate and its latency is measured from that intended
  time, so time spent queued behind a slow answer counts. One thread, non-blocking, keep-alive
  connections opened on demand up to a limit. The generator reports its own lag behind schedule
  (how late it noticed each request was due: its own slowness, not the server's), the send delay
  (due until written: includes waiting for a free connection), its CPU use and the rate achieved.
- `run_wrk`: Debian's `wrk` for closed-loop throughput at N connections, with a Lua `done()` hook
  that prints its summary as one JSON line.

All latencies go into HDR histograms (hdr.py). Only 127.0.0.1 is ever addressed.
"""

from __future__ import annotations

import json
import resource
import selectors
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common.hdr import Histogram

HOST = "127.0.0.1"
MS = 1_000_000


@dataclass(frozen=True)
class Target:
    """One kind of request to one server."""

    name: str
    port: int
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    def request_bytes(self) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class ResponseParser:
    """Just enough HTTP/1.1 to know when one answer is complete: Content-Length or chunked."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.buffer = bytearray()
        self.header_end = -1
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.close = False

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once a whole answer is in."""
        self.buffer += data
        if self.header_end < 0 and not self._parse_head():
            return False
        body = memoryview(self.buffer)[self.header_end :]
        if self.status in (204, 304) or (self.length is not None and len(body) >= self.length):
            return True
        return self.chunked and _chunked_complete(bytes(body))

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        self.header_end = end + 4
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        self.status = int(rest.split(" ", 1)[0])
        self.close = version == "HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                self.length = int(value)
            elif name == "transfer-encoding":
                self.chunked = "chunked" in value
            elif name == "connection":
                self.close = value == "close"
        return True

    def body(self) -> bytes:
        return bytes(self.buffer[self.header_end :])


def _chunked_complete(body: bytes) -> bool:
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return False
        size = int(body[position:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            return body.find(b"\r\n\r\n", line_end) >= 0 or body.endswith(b"\r\n\r\n")
        position = line_end + 2 + size + 2
        if position > len(body):
            return False


class Connection:
    """A keep-alive client connection (blocking socket: recv is only called once select says readable)."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.sock = socket.create_connection((HOST, target.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = ResponseParser()
        self.intended = 0
        self.uses = 0

    def close(self) -> None:
        self.sock.close()


def one_request(target: Target, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and body of one request on a fresh connection (checks, not measurements)."""
    conn = Connection(target, timeout)
    try:
        conn.sock.sendall(target.request_bytes())
        while not conn.parser.feed(conn.sock.recv(65536) or b""):
            pass
        return conn.parser.status, conn.parser.body()
    finally:
        conn.close()


def sequential(target: Target, *, count: int, warmup: int = 50, timeout: float = 10.0) -> dict[str, Any]:
    """`count` requests one after another on one keep-alive connection (reopened if the server closes it)."""
    latency, statuses, request = Histogram(), Counter[int](), target.request_bytes()
    conn: Connection | None = None
    errors = 0
    for i in range(warmup + count):
        start = time.monotonic_ns()
        try:
            conn = conn or Connection(target, timeout)
            conn.parser.reset()
            conn.sock.sendall(request)
            while not conn.parser.feed(conn.sock.recv(65536) or _closed()):
                pass
        except OSError:
            errors += 1
            conn = _drop(conn)
            continue
        if i >= warmup:
            latency.record(time.monotonic_ns() - start)
            statuses[conn.parser.status] += 1
        if conn.parser.close:
            conn = _drop(conn)
    _drop(conn)
    return {"target": target.name, "requests": count, "errors": errors, "statuses": _keys(statuses), **_ms(latency)}


def failures(result: dict[str, Any]) -> int:
    """Requests of a sequential or open-loop run that got no answer, or an answer other than 200."""
    errors = result["errors"]
    failed = errors if isinstance(errors, int) else sum(errors.values())
    return failed + sum(count for status, count in result["statuses"].items() if status != "200")


def _closed() -> bytes:
    raise ConnectionResetError("the server closed the connection mid-answer")


def _drop(conn: Connection | None) -> None:
    """Close `conn` if there is one; returns None, to be assigned back."""
    if conn is not None:
        conn.close()


def _keys(counter: Counter[int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counter.items())}


def _ms(histogram: Histogram, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in histogram.summary().items() if name != "count"}


@dataclass
class _OpenLoopState:
    target: Target
    connections: int
    timeout_ns: int
    latency: Histogram
    lag: Histogram
    send_delay: Histogram
    statuses: Counter[int]
    errors: Counter[str]
    idle: list[Connection]
    in_flight: dict[Connection, int]
    opened: int = 0
    retried: int = 0
    completed: int = 0
    last_done: int = 0


def open_loop(
    target: Target, *, rate: float, duration: float, connections: int = 64, timeout: float = 5.0, warm: int = 8
) -> dict[str, Any]:
    """Requests due every 1/rate seconds for `duration` seconds; latency measured from each one's due time."""
    total, interval = max(1, round(rate * duration)), 1e9 / rate
    state = _OpenLoopState(
        target, connections, int(timeout * 1e9), Histogram(), Histogram(), Histogram(), Counter(), Counter(), [], {}
    )
    # select(2) sleeps to the microsecond; epoll's timeout is whole milliseconds (Python rounds it up): 0.5 ms late
    # on average, on every request, which the generator would report as its own lag.
    selector, request, queue = selectors.SelectSelector(), target.request_bytes(), deque[int]()
    _warm_connections(state, min(warm, connections))
    cpu_before = _cpu_seconds()
    start = time.monotonic_ns() + 20 * MS
    deadline, due, next_check = start + int(duration * 1e9) + state.timeout_ns, 0, 0
    while state.completed + sum(state.errors.values()) < total and time.monotonic_ns() < deadline:
        now = time.monotonic_ns()
        while due < total and start + int(due * interval) <= now:
            intended = start + int(due * interval)
            state.lag.record(now - intended)  # the generator's own lateness
            queue.append(intended)
            due += 1
        _send_queued(state, selector, queue, request)
        wake = start + int(due * interval) if due < total else now + 10 * MS
        for key, _ in selector.select(max(0, wake - time.monotonic_ns()) / 1e9):
            _receive(state, selector, key.data, request)
        if now >= next_check:
            _expire(state, selector, now)
            next_check = now + 50 * MS
    unanswered = len(state.in_flight) + len(queue) + (total - due)
    if unanswered:
        state.errors["unanswered"] += unanswered
    cpu = _cpu_seconds() - cpu_before
    for conn in [*state.idle, *state.in_flight]:
        conn.close()
    elapsed = max(1, (state.last_done or time.monotonic_ns()) - start) / 1e9
    return {
        "target": target.name, "rate": rate, "duration_s": duration, "requests": total,
        "completed": state.completed, "achieved_rate": round(state.completed / elapsed, 1),
        "errors": dict(state.errors), "statuses": _keys(state.statuses),
        "connections_opened": state.opened, "retried_on_new_connection": state.retried,
        **_ms(state.latency), **_ms(state.lag, "generator_lag_"), **_ms(state.send_delay, "send_delay_"),
        "generator_cpu_share": round(cpu / elapsed, 3),
    }  # fmt: skip


def _warm_connections(state: _OpenLoopState, count: int) -> None:
    """Open and use a few connections before the clock starts (each answers one untimed request)."""
    request = state.target.request_bytes()
    for _ in range(count):
        conn = _open(state)
        conn.sock.sendall(request)
        conn.uses += 1
        while not conn.parser.feed(conn.sock.recv(65536) or _closed()):
            pass
        if conn.parser.close:
            conn.close()
        else:
            state.idle.append(conn)


def _send_queued(state: _OpenLoopState, selector: selectors.BaseSelector, queue: deque[int], request: bytes) -> None:
    while queue and (state.idle or len(state.in_flight) + len(state.idle) < state.connections):
        intended = queue.popleft()
        try:
            _send(state, selector, state.idle.pop() if state.idle else _open(state), request, intended)
        except OSError as error:
            state.errors[type(error).__name__] += 1
            continue
        state.send_delay.record(time.monotonic_ns() - intended)


def _open(state: _OpenLoopState) -> Connection:
    state.opened += 1
    return Connection(state.target, state.timeout_ns / 1e9)


def _send(
    state: _OpenLoopState, selector: selectors.BaseSelector, conn: Connection, request: bytes, intended: int
) -> None:
    conn.parser.reset()
    try:
        conn.sock.sendall(request)
    except OSError:
        conn.close()
        raise
    conn.intended = intended
    conn.uses += 1
    state.in_flight[conn] = intended
    selector.register(conn.sock, selectors.EVENT_READ, conn)


def _receive(state: _OpenLoopState, selector: selectors.BaseSelector, conn: Connection, request: bytes) -> None:
    try:
        data = conn.sock.recv(65536)
    except OSError:
        data = b""
    if not data and conn.uses > 1 and not conn.parser.buffer:
        _retry(state, selector, conn, request)  # a kept connection the server had closed: as any client, retry
        return
    try:
        if not data:
            raise ConnectionResetError("closed by the server")
        if not conn.parser.feed(data):
            return
    except OSError as error:
        state.errors[type(error).__name__] += 1
        _retire(state, selector, conn)
        return
    done = time.monotonic_ns()
    state.latency.record(done - conn.intended)
    state.statuses[conn.parser.status] += 1
    state.completed += 1
    state.last_done = done
    selector.unregister(conn.sock)
    del state.in_flight[conn]
    if conn.parser.close:
        conn.close()
    else:
        state.idle.append(conn)


def _retry(state: _OpenLoopState, selector: selectors.BaseSelector, conn: Connection, request: bytes) -> None:
    """Send the request again on a new connection; it keeps its due time (the delay counts)."""
    intended = conn.intended
    _retire(state, selector, conn)
    state.retried += 1
    try:
        _send(state, selector, _open(state), request, intended)
    except OSError as error:
        state.errors[type(error).__name__] += 1


def _retire(state: _OpenLoopState, selector: selectors.BaseSelector, conn: Connection) -> None:
    selector.unregister(conn.sock)
    state.in_flight.pop(conn, None)
    conn.close()


def _expire(state: _OpenLoopState, selector: selectors.BaseSelector, now: int) -> None:
    for conn, intended in list(state.in_flight.items()):
        if now - intended > state.timeout_ns:
            state.errors["timeout"] += 1
            _retire(state, selector, conn)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


WRK_SCRIPT = """
wrk.method = "{method}"
{body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d}},"latency_us":{{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def wrk_script(target: Target) -> str:
    body = f"wrk.body = {_lua_string(target.body.decode())}" if target.body else ""
    headers = "\n".join(f"wrk.headers[{_lua_string(n)}] = {_lua_string(v)}" for n, v in target.headers)
    return WRK_SCRIPT.format(method=target.method, body=body, headers=headers)


def run_wrk(
    target: Target, *, connections: int = 16, threads: int = 2, duration: float = 10.0, timeout: float = 5.0
) -> dict[str, Any]:
    """Closed-loop throughput: `connections` keep-alive connections, each sending as soon as answered."""
    with tempfile.TemporaryDirectory(prefix="flagservice-wrk-") as folder:
        script = Path(folder) / "target.lua"
        script.write_text(wrk_script(target))
        argv = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
        argv += [f"--timeout={max(1, round(timeout))}s", "-s", str(script), target.url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:] or done.stdout[-500:]}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    failed = sum(raw["errors"].values())
    return {
        "target": target.name, "connections": connections, "threads": min(threads, connections),
        "duration_s": round(seconds, 2), "requests": raw["requests"], "errors": raw["errors"],
        "requests_per_s": round((raw["requests"] - raw["errors"]["status"]) / seconds, 1) if seconds else 0.0,
        "failed": failed,
        **{f"{k}_ms": round(v / 1000, 3) for k, v in raw["latency_us"].items()},
    }  # fmt: skip
