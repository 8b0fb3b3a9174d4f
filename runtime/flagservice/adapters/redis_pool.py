"""Connection construction: a blocking pool that remembers its peak use (the RedisPoolPeakInUse metric),
and the cluster-mode client (REDIS_CLUSTER_MODE), built on first use."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
from redis._parsers import BaseParser
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

if TYPE_CHECKING:
    from flagservice.adapters.redis_credentials import RefreshingCredentials as CredentialProvider


class PeakTrackingPool(redis.BlockingConnectionPool):
    """redis-py's BlockingConnectionPool, plus the most connections in use at once since `take_peak()`.

    A gauge read at the end of a request always sees 0 in use: every connection is back in the pool by
    then. The peak during the request is what shows a pool close to exhaustion, so the handler takes it
    once per request (telemetry.record_answer).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._peak = 0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        connection = super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._peak = max(self._peak, self.in_use())
        return connection

    def in_use(self) -> int:
        return len(self._get_in_use_connections())  # type: ignore[no-untyped-call]

    def take_peak(self) -> int:
        """The peak since the last call; the next period starts from what is in use now."""
        peak, self._peak = self._peak, self.in_use()
        return peak


class LazyCluster:
    """A redis-py RedisCluster, built on first use and built again after it lost every node.

    RedisCluster connects when it is constructed (CLUSTER SLOTS, then COMMAND) and raises if no node
    answers, whereas the service must start, and serve from PostgreSQL, while its cache is down. So the
    adapter asks `get()` for the client inside its error guard: a cache down at start-up costs each
    request one bounded attempt (the breaker then stops those), and the first success keeps the client.
    After a failed topology refresh (no node it knew answered, RedisClusterException), `forget()` drops
    it: the next build starts again from REDIS_URL (the configuration endpoint, resolved again).
    """

    def __init__(self, build: Callable[[], RedisCluster]) -> None:
        self._build = build
        self._cluster: RedisCluster | None = None
        self._lock = threading.Lock()  # the background sync thread shares the client with requests
        self._failures = 0  # builds that failed
        self._failure = ""  # why the last one failed

    def get(self) -> RedisCluster:
        """The client; a caller that waited for another's build which failed gets that failure, and does not
        build again itself (one after another, each waiter would wait for every build before its own)."""
        failures = self._failures
        with self._lock:
            if self._cluster is None:
                if self._failures != failures:
                    raise RedisClusterException(f"the cluster client could not be built: {self._failure}")
                try:
                    self._cluster = self._build()
                except Exception as exc:
                    self._failures, self._failure = self._failures + 1, str(exc)[:200]
                    raise
            return self._cluster

    def forget(self) -> None:
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()

    def in_use(self) -> int:
        """Connections checked out of every node's pool right now (the RedisPoolInUse metric)."""
        cluster = self._cluster
        if cluster is None:
            return 0
        return sum(len(node.redis_connection.connection_pool._in_use_connections)  # noqa: SLF001 - no public count
                   for node in cluster.get_nodes() if node.redis_connection is not None)  # fmt: skip


def node_pool(cluster: RedisCluster, key: str) -> redis.ConnectionPool:
    """The connection pool of the primary that holds `key`'s slot, as the client knows it now."""
    node = cluster.get_node_from_key(key)
    return cluster.get_redis_connection(node).connection_pool


class ClusterDownError(redis.ResponseError):
    """CLUSTERDOWN as a plain refused command (see plain_cluster_down)."""


@functools.cache
def plain_cluster_down(parser: type[BaseParser]) -> type[BaseParser]:
    """`parser` (RESP2 or RESP3, as the connection chose) with CLUSTERDOWN parsed as ClusterDownError above, not as
    redis-py's: on its own, redis-py sleeps 250 ms and refreshes the topology inside the command that met it,
    past the read budget on every read until the breaker opens, and on each of its probes."""
    classes = {**parser.EXCEPTION_CLASSES, "CLUSTERDOWN": ClusterDownError}
    return type(f"PlainClusterDown{parser.__name__}", (parser,), {"EXCEPTION_CLASSES": classes})


class BoundedCluster(RedisCluster):
    """RedisCluster kept within the cache's wait budget (DESIGN.md: 100 ms connect, 50 ms command, one retry).

    redis-py retries ConnectionError and TimeoutError `retry` times, refreshing the topology from another
    node between attempts (the failed one asked last), so a dead or hung primary costs a request what it
    costs standalone: two timed-out attempts. It would also retry CLUSTERDOWN and an uncovered slot, each
    after a 250 ms sleep and a topology refresh: not here. CLUSTERDOWN (a slot no node serves, a node cut off
    from the majority) fails at once like a refused command (plain_cluster_down); a slot given to another node
    answers MOVED instead, which is followed. MOVED and ASK are followed within an attempt, at most
    RedisClusterRequestTTL times (redis-py: 16), each a round trip to a node that answers.
    """

    ERRORS_ALLOW_RETRY = (redis.ConnectionError, redis.TimeoutError)  # type: ignore[assignment]
    RedisClusterRequestTTL = 3  # redirects per attempt: a MOVED, then an ASK during a slot migration

    def __init__(self, *args: Any, refreshing: CredentialProvider | None = None, **kwargs: Any) -> None:
        self._refreshing = refreshing  # set first: the constructor already connects
        super().__init__(*args, **kwargs)

    def on_connect(self, connection: Any) -> None:
        """RedisCluster's handshake; credentials the server refuses are forgotten (redis_credentials), so the
        next connection signs in with fresh ones. (A `redis_connect_func` would run after a second handshake.)"""
        parser: type[BaseParser] = type(connection._parser)  # noqa: SLF001 - redis-py chooses it by protocol; no public accessor
        if parser.EXCEPTION_CLASSES.get("CLUSTERDOWN") is not ClusterDownError:  # not yet (a reconnect keeps it)
            connection.set_parser(plain_cluster_down(parser))
        try:
            super().on_connect(connection)  # type: ignore[no-untyped-call]
        except redis.AuthenticationError:
            if self._refreshing is not None:
                self._refreshing.forget()
            raise
