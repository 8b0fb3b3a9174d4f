"""The Redis replies this process waited for, seen at redis-py's connection: how many, and how long each wait took.

A read that must not wait on a paused Redis was once asserted as "took under 50 ms", the command timeout, and a
read that may wait as "took under twice the timeout with one retry": on a busy 2-core machine the PostgreSQL read
beside the wait, and the CPU the read needs, take that long too (runs under load saw 49 to 69 ms for no wait, and
0.51 s for a read whose waits on Redis were 2 x 50 ms). Every wait on a server goes through `read_response`
(commands, pipelines, scripts, the handshake of a new connection): none awaited is "not waited on" with no clock
in it, and the time inside those calls is the time waited on Redis, whatever else the read spent.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

from redis.connection import AbstractConnection


@contextlib.contextmanager
def replies_awaited(port: int | None = None) -> Iterator[list[float]]:
    """The seconds each Redis reply took to await inside the block (only `port`'s, if given), in order."""
    awaited: list[float] = []
    original = AbstractConnection.read_response

    def timed(connection: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        if port is not None and getattr(connection, "port", None) != port:
            return original(connection, *args, **kwargs)
        started = time.perf_counter()
        try:
            return original(connection, *args, **kwargs)
        finally:
            awaited.append(time.perf_counter() - started)

    with mock.patch.object(AbstractConnection, "read_response", timed):
        yield awaited
