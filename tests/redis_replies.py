"""Counting the Redis replies this process waited for, at redis-py's connection: "not waited on at all" as a count.

A read that must not wait on a paused Redis was once asserted as "took under 50 ms", the command timeout: on a busy
2-core machine the PostgreSQL read it does instead takes that long too (CI-like runs saw 49 to 69 ms). Every wait on
a server goes through `read_response` (commands, pipelines, scripts and the handshake of a new connection), so none
awaited is the same claim with no clock in it; a wait on a paused server could not be faster than its timeout anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from redis.connection import AbstractConnection


@contextlib.contextmanager
def replies_awaited(port: int | None = None) -> Iterator[list[int]]:
    """The port of every Redis reply waited for inside the block (only `port`'s, if given), in order."""
    awaited: list[int] = []
    original = AbstractConnection.read_response

    def counted(connection: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        server = getattr(connection, "port", None)
        if port is None or server == port:
            awaited.append(server)
        return original(connection, *args, **kwargs)

    with mock.patch.object(AbstractConnection, "read_response", counted):
        yield awaited
