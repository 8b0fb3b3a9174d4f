"""Open-loop load at a constant arrival rate: latency from each request's due time (no coordinated omission).

One thread, non-blocking, keep-alive connections opened on demand up to a limit. The generator reports its
own lag behind schedule, the send delay (due until written), its CPU use and the rate achieved.
"""

from __future__ import annotations

import resource
import selectors
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from bench.common.hdr import Histogram
from bench.common.http_load.connection import Connection, Target, closed_mid_answer
from bench.common.http_load.summary import latency_fields, status_keys

MS = 1_000_000


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


@dataclass(frozen=True)
class _Schedule:
    """Request i is due at start + i * interval (monotonic ns), for i below `total`."""

    start: int
    interval: float
    total: int

    def due_at(self, index: int) -> int:
        return self.start + int(index * self.interval)


def open_loop(
    target: Target, *, rate: float, duration: float, connections: int = 64, timeout: float = 5.0, warm: int = 8
) -> dict[str, Any]:
    """Requests due every 1/rate seconds for `duration` seconds; latency measured from each one's due time."""
    state = _OpenLoopState(
        target, connections, int(timeout * 1e9), Histogram(), Histogram(), Histogram(), Counter(), Counter(), [], {}
    )
    # select(2) sleeps to the microsecond; epoll's timeout is whole milliseconds (Python rounds it up): 0.5 ms late
    # on average, on every request, which the generator would report as its own lag.
    selector, request, queue = selectors.SelectSelector(), target.request_bytes(), deque[int]()
    _warm_connections(state, min(warm, connections))
    cpu_before = _cpu_seconds()
    schedule = _Schedule(time.monotonic_ns() + 20 * MS, 1e9 / rate, max(1, round(rate * duration)))
    deadline = schedule.start + int(duration * 1e9) + state.timeout_ns
    due = _drive(state, selector, queue, request, schedule, deadline)
    unanswered = len(state.in_flight) + len(queue) + (schedule.total - due)
    if unanswered:
        state.errors["unanswered"] += unanswered
    cpu = _cpu_seconds() - cpu_before
    for conn in [*state.idle, *state.in_flight]:
        conn.close()
    return _report(state, schedule, rate=rate, duration=duration, cpu=cpu)


def _drive(
    state: _OpenLoopState,
    selector: selectors.BaseSelector,
    queue: deque[int],
    request: bytes,
    schedule: _Schedule,
    deadline: int,
) -> int:
    """Queue each request when due, send, take answers, until all are done or `deadline`; how many fell due."""
    due, next_check = 0, 0
    while state.completed + sum(state.errors.values()) < schedule.total and time.monotonic_ns() < deadline:
        now = time.monotonic_ns()
        while due < schedule.total and schedule.due_at(due) <= now:
            intended = schedule.due_at(due)
            state.lag.record(now - intended)  # the generator's own lateness
            queue.append(intended)
            due += 1
        _send_queued(state, selector, queue, request)
        wake = schedule.due_at(due) if due < schedule.total else now + 10 * MS
        for key, _ in selector.select(max(0, wake - time.monotonic_ns()) / 1e9):
            _receive(state, selector, key.data, request)
        if now >= next_check:
            _expire(state, selector, now)
            next_check = now + 50 * MS
    return due


def _report(state: _OpenLoopState, schedule: _Schedule, *, rate: float, duration: float, cpu: float) -> dict[str, Any]:
    elapsed = max(1, (state.last_done or time.monotonic_ns()) - schedule.start) / 1e9
    return {
        "target": state.target.name, "rate": rate, "duration_s": duration, "requests": schedule.total,
        "completed": state.completed, "achieved_rate": round(state.completed / elapsed, 1),
        "errors": dict(state.errors), "statuses": status_keys(state.statuses),
        "connections_opened": state.opened, "retried_on_new_connection": state.retried,
        **latency_fields(state.latency), **latency_fields(state.lag, "generator_lag_"),
        **latency_fields(state.send_delay, "send_delay_"),
        "generator_cpu_share": round(cpu / elapsed, 3),
    }  # fmt: skip


def _warm_connections(state: _OpenLoopState, count: int) -> None:
    """Open and use a few connections before the clock starts (each answers one untimed request)."""
    request = state.target.request_bytes()
    for _ in range(count):
        conn = _open(state)
        conn.sock.sendall(request)
        conn.uses += 1
        while not conn.parser.feed(conn.sock.recv(65536) or closed_mid_answer()):
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
