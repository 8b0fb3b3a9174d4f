"""A deadline of the service's own on a PostgreSQL call, enforced from outside the waiting thread.

A database behind a proxy (RDS Proxy, PgBouncer) that stops answering keeps TCP alive, so neither the
kernel (TCP user timeout, keepalives) nor the server (statement_timeout) ever ends the wait, and a
cancel request travels the same dead path. At the deadline a timer shuts the connection's socket down:
the blocked libpq call returns at once with a broken connection, which psycopg raises as
OperationalError and the pool discards.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg


@dataclass
class Deadline:
    """An absolute point on the monotonic clock by which a database call must be over."""

    seconds: float
    grace: float = 0.0  # the connection is cut this long after `at` (a COMMIT sent in time is waited for)
    at: float = field(init=False)

    def __post_init__(self) -> None:
        self.at = time.monotonic() + self.seconds

    @property
    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at


def _shut_down(fd: int) -> None:
    with contextlib.suppress(OSError):
        # A duplicate descriptor shares the socket; shutting it down ends every wait on the original.
        sock = socket.socket(fileno=socket.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()


@contextmanager
def enforced(conn: psycopg.Connection[object], deadline: Deadline) -> Iterator[None]:
    """Run the block on `conn`; if it is still running at the deadline, cut the connection."""
    try:
        fd = conn.pgconn.socket
    except psycopg.OperationalError:
        yield  # no socket: the call will fail by itself
        return
    timer = threading.Timer(deadline.remaining + deadline.grace, _shut_down, args=(fd,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
