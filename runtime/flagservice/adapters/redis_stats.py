"""Global per-flag hit and miss counts in Redis, sent at the end of every request without waiting.

The counts must be current as of each container's last completed request, yet an in-process hit
must not pay a Redis round trip for them. So each request's increments go out on a dedicated
connection (one per container, beside the pool) whose replies are not waited for: they are read in
batches, long after they arrived (a few bytes each, far below the socket's buffer). The cost on the
hot path is one send, and Redis applies the increments in order.

In cluster mode the connection goes to the primary owning the environment's slot (every stats key has
its hash tag), and is opened again when the client learns that another node owns it (after a failover).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.connection import AbstractConnection

from flagservice.adapters import redis_keys
from flagservice.adapters.redis_pool import node_pool
from flagservice.flags.model import format_time

UNREAD_LIMIT = 1000  # replies (about 6 bytes each) left in the socket buffer before they are read


class RedisStatsCounter:
    def __init__(self, client: Callable[[], redis.Redis | RedisCluster], *, env: str) -> None:
        self._client = client  # the adapter's client, asked at each use (a cluster's is built on first use)
        self._env = env
        self._hits: Counter[str] = Counter()
        self._misses: Counter[str] = Counter()
        self._connection: AbstractConnection | None = None
        self._pool_of_connection: redis.ConnectionPool | None = None
        self._unread = 0  # replies sent back for increments and not read yet
        self._since_set = False  # the "counting since" mark is set once per process

    def count(self, key: str, *, hit: bool) -> None:
        (self._hits if hit else self._misses)[key] += 1

    def _commands(self) -> list[tuple[Any, ...]]:
        commands: list[tuple[Any, ...]] = [
            ("HINCRBY", redis_keys.stats_key(self._env, kind), key, n)
            for kind, counts in (("hits", self._hits), ("misses", self._misses))
            for key, n in counts.items()
        ]
        if commands and not self._since_set:
            commands.append(("SET", redis_keys.stats_key(self._env, "since"), format_time(datetime.now(UTC)), "NX"))
        return commands

    def _drain(self, connection: AbstractConnection) -> None:
        while self._unread:
            connection.read_response()
            self._unread -= 1

    def flush(self) -> None:
        """Send the counts of this request; raise a redis-py error (and forget the connection) on failure."""
        commands = self._commands()
        if not commands:
            return
        try:
            connection = self._open()
            if self._unread >= UNREAD_LIMIT:
                self._drain(connection)
            connection.send_packed_command(connection.pack_commands(commands), check_health=False)
        except (redis.RedisError, OSError):
            self.close()
            raise
        self._unread += len(commands)
        self._since_set = True
        self._hits.clear()
        self._misses.clear()

    def read(self) -> tuple[dict[str, int], dict[str, int], str | None]:
        """Every container's counts, this one's included (flushed and applied first)."""
        self.flush()
        if self._connection is not None:
            self._drain(self._connection)
        pipe = self._client().pipeline(transaction=False)  # one slot: one node, even in cluster mode
        for kind in ("hits", "misses"):
            pipe.hgetall(redis_keys.stats_key(self._env, kind))
        pipe.get(redis_keys.stats_key(self._env, "since"))
        hits, misses, since = pipe.execute()
        return _ints(hits), _ints(misses), since.decode() if since else None

    def _open(self) -> AbstractConnection:
        pool = self._pool()
        if self._connection is not None and self._pool_of_connection is not pool:
            self.close()  # the slot moved to another node: increments sent to the old one would be refused
        if self._connection is None:
            self._connection = pool.connection_class(**pool.connection_kwargs)
            self._pool_of_connection = pool
            self._unread = 0
        return self._connection

    def _pool(self) -> redis.ConnectionPool:
        client = self._client()
        if isinstance(client, RedisCluster):
            return node_pool(client, redis_keys.stats_key(self._env, "hits"))
        return client.connection_pool

    def close(self) -> None:
        if self._connection is not None:
            self._connection.disconnect()
        self._connection = None
        self._unread = 0


def _ints(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {key.decode(): int(value) for key, value in raw.items()}
