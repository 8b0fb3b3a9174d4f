"""Sequential load: one keep-alive connection, one request at a time; each request's latency."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.common.hdr import Histogram
from bench.common.http_load.connection import Connection, Target, closed_mid_answer
from bench.common.http_load.summary import latency_fields, status_keys


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
            while not conn.parser.feed(conn.sock.recv(65536) or closed_mid_answer()):
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
    counts = {"target": target.name, "requests": count, "errors": errors, "statuses": status_keys(statuses)}
    return counts | latency_fields(latency)


def _drop(conn: Connection | None) -> None:
    """Close `conn` if there is one; returns None, to be assigned back."""
    if conn is not None:
        conn.close()
