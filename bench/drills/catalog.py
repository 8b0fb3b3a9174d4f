"""The faults `make drill` injects (DESIGN.md, Reliability), each with how it is produced and how it heals.

Redis sits behind the fault proxy in every drill (in pass mode it only forwards), so wire faults and
process faults run against the same cluster. `inject` and `heal` return when the fault is in place
and when the store is back (a restarted server answers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.common.cluster import Cluster
from bench.common.faults import Direction, Fault, Mode
from bench.drills.handler import HOLD, RELEASE

REPLY_DELAY_MS = 200


@dataclass(frozen=True)
class Drill:
    name: str
    title: str
    how: str  # one line for the README: how the drill produces the fault
    inject: Callable[[Cluster], None]
    heal: Callable[[Cluster], None]
    store: str = "redis"  # the store that fails: "redis" or "postgres"
    instant: bool = False  # the fault is a moment (a flush): there is nothing to heal


def _proxy(cluster: Cluster, fault: Fault) -> None:
    assert cluster.proxy is not None, "wire faults need the cluster's Redis behind the proxy"
    cluster.proxy.set(fault)


def _restart_redis(cluster: Cluster) -> None:
    cluster.redis = cluster.redis.restart()  # same port, no persistence: empty


def _restart_postgres(cluster: Cluster) -> None:
    cluster.postgres = cluster.postgres.restart()


def _every_server(path: str) -> Callable[[Cluster], None]:
    def call(cluster: Cluster) -> None:
        for server in cluster.servers:
            answer = server.admin("POST", path)
            if answer.status != 200:
                raise RuntimeError(f"{path} on server {server.index}: HTTP {answer.status} {answer.error}")

    return call


def _nothing(cluster: Cluster) -> None:
    return None


DRILLS = (
    Drill("redis-killed", "Redis killed, restarted empty", "SIGKILL, then a new empty redis-server on the same port",
          lambda c: c.redis.kill(), _restart_redis),
    Drill("redis-paused", "Redis paused", "SIGSTOP, then SIGCONT (connections stay open, nothing answers)",
          lambda c: c.redis.pause(), lambda c: c.redis.resume()),
    Drill("redis-slow", f"every Redis reply delayed {REPLY_DELAY_MS} ms",
          f"the fault proxy holds every reply {REPLY_DELAY_MS} ms (commands still reach Redis at once)",
          lambda c: _proxy(c, Fault(Mode.DELAY, delay_ms=REPLY_DELAY_MS, direction=Direction.DOWN)),
          lambda c: _proxy(c, Fault())),
    Drill("redis-dropped", "Redis connections silently dropped",
          "the fault proxy discards every byte both ways and keeps connections open (new ones too)",
          lambda c: _proxy(c, Fault(Mode.DROP)), lambda c: _proxy(c, Fault())),
    Drill("redis-pool-exhausted", "Redis connection pool exhausted",
          "in every worker, every pooled connection is checked out and held (a drill seam: bench/drills/handler.py)",
          _every_server(HOLD), _every_server(RELEASE)),
    Drill("redis-flushed", "Redis flushed (FLUSHALL)", "FLUSHALL from outside the service, under load",
          lambda c: c.redis_admin().flushall(), _nothing, instant=True),
    Drill("postgres-stopped", "PostgreSQL stopped, warm cache",
          "fast shutdown (SIGINT), then a restart on the same port with the same data",
          lambda c: c.postgres.stop(), _restart_postgres, store="postgres"),
)  # fmt: skip
