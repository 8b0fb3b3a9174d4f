"""The Redis replies this process waited for, seen at redis-py's connection: from which server, and how long each took.

A read that must not wait on a paused Redis was once asserted as "took under 50 ms", the command timeout, and a
read that may wait as "took under twice the timeout with one retry": on a busy 2-core machine the PostgreSQL read
beside the wait, and the CPU the read needs, take that long too (runs under load saw 49 to 69 ms for no wait, and
0.51 s for a read whose waits on Redis were 2 x 50 ms). Every wait on a server goes through `read_response`
(commands, pipelines, scripts, the handshake of a new connection): none awaited is "not waited on" with no clock
in it, and how many were awaited from a paused server is "at most one retry" with no clock in it either. Only the
timeout's size needs a clock: `fastest_wait` takes the least of several requests' waits, so one request the machine
did not run for a while cannot fail it, while a timeout set too long makes every request wait too long.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple
from unittest import mock

from redis.connection import AbstractConnection


class Reply(NamedTuple):
    port: int | None
    seconds: float


@contextlib.contextmanager
def replies_awaited() -> Iterator[list[Reply]]:
    """Every Redis reply waited for inside the block: the server's port and the seconds the wait took, in order."""
    awaited: list[Reply] = []
    original = AbstractConnection.read_response

    def timed(connection: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(connection, *args, **kwargs)
        finally:
            awaited.append(Reply(getattr(connection, "port", None), time.perf_counter() - started))

    with mock.patch.object(AbstractConnection, "read_response", timed):
        yield awaited


def on(port: int, replies: Sequence[Reply]) -> list[Reply]:
    return [reply for reply in replies if reply.port == port]


def fastest_wait(requests: Sequence[Sequence[Reply]]) -> float:
    """The least total time any of these requests spent awaiting Redis replies."""
    return min(sum(reply.seconds for reply in replies) for replies in requests)
