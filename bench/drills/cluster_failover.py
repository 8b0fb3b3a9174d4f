"""Issue 20: in a Redis Cluster, the primary holding the environment's slot dies, under open-loop load on every path.

A Redis Cluster on loopback (local/redis_cluster.py: 3 primaries, each with a replica, node timeout 1 s)
and two local servers in cluster mode (REDIS_CLUSTER_MODE=true; REDIS_URL names a node of another
shard: any node will do). With every path of both servers read open loop (common/readers.py):

1. the primary holding the environment's slot (`{cluster}`) is killed (SIGKILL);
2. `write_after` later, during the outage, the kill switch is written (PATCH `{"enabled": false}` through
   server 0): it must answer 200, the PostgreSQL commit being the acknowledgement (the cache catches up by
   the outbox replay);
3. the cluster heals by itself: the dead primary's replica is elected; "healthy" is when every live node
   says cluster_state:ok and the slot's new primary answers as one;
4. the readers read on for `observe` seconds.

Measured: failed reads (bar: 0); from healthy until every server serves the kill switch on every path
and keeps serving it (bound 5 s, target 1 s); from healthy until a second of answers is at least 80 %
`HIT` (bar: within 10 s); the `HIT` share of the last `warm` seconds (bar: at least 90 %); latency from
the schedule, from the kill to the end.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import report
from bench.common.cluster import Cluster, ClusterOptions, running_cluster
from bench.common.load import write_flag
from bench.common.openloop import Reply
from bench.common.readers import PathReader, run_readers
from bench.drills.open_loop import OpenLoopPlan, failed_reads, open_readers, reads_row, seed, served_since, worst
from flagservice.adapters import redis_keys
from local.redis_cluster import RedisClusterNodes, running_redis_cluster

NAME = "redis-cluster-failover"
FLAGS_ENV = "cluster"
OPTIONS = ClusterOptions(servers=2, flags_env=FLAGS_ENV)
KILL_SWITCH = "cluster-kill-switch"
FILLERS = tuple(f"cluster-flag-{i}" for i in range(5))
BOUND = 5.0  # DESIGN.md: served everywhere within 5 s of the cluster being healthy again
TARGET = 1.0
HIT_AGAIN = (0.80, 10.0)  # at least 80 % HIT within 10 s of healthy
HIT_WARM = 0.90
HOW = ("a Redis Cluster of 3 primaries and 3 replicas; the primary holding the environment's slot is killed "
       "(SIGKILL) and its replica elected; the kill switch is written during the outage")  # fmt: skip


@dataclass(frozen=True)
class Plan(OpenLoopPlan):
    write_after: float  # after the kill: the kill switch is written while the slot has no primary
    observe: float  # after the cluster is healthy again
    warm: float  # the last seconds of the observation, for the warm HIT share


# 10 requests a second on each of 4 paths: 40 a second per server, which its one worker (one request at a
# time, as a Lambda container) still serves when every read bypasses to PostgreSQL for the 2 to 3 s an
# election takes on loopback (the other failover drill's outage lasts 1 s); past that, a local queue grows.
SHORT = Plan(rate=10.0, baseline=0.5, write_after=0.3, observe=6.0, warm=2.0)
LONG = Plan(rate=10.0, baseline=3.0, write_after=0.5, observe=15.0, warm=5.0)


def _fail_over(nodes: RedisClusterNodes, cluster: Cluster, plan: Plan) -> dict[str, Any]:
    """Steps 1 to 3 of the module docstring; their times (time.monotonic()) and the kill switch's write."""
    owner = nodes.owner(redis_keys.revision_key(FLAGS_ENV))
    killed = time.monotonic()
    owner.kill()
    time.sleep(plan.write_after)
    flip = write_flag(cluster.servers[0], "PATCH", KILL_SWITCH, {"enabled": False})
    healthy = nodes.wait_healthy(timeout=30.0)
    return {"flip": flip, "killed": killed, "healthy": healthy}


def run(nodes: RedisClusterNodes, cluster: Cluster, plan: Plan) -> dict[str, Any]:
    """The drill on fresh clusters (a primary dies: one drill per cluster)."""
    seed(cluster, [KILL_SWITCH, *FILLERS])
    readers = open_readers(cluster.servers, KILL_SWITCH, FILLERS, plan.rate)
    loop = run_readers(readers)
    try:
        time.sleep(plan.baseline)
        moments = _fail_over(nodes, cluster, plan)
        time.sleep(max(0.0, moments["healthy"] + plan.observe - time.monotonic()))
        end = time.monotonic()
    finally:
        loop.stop()
    return _row(readers, moments, end, plan) | {"generator_lag_s": loop.lag_summary()}


def _replies(readers: Sequence[PathReader], start: float, end: float) -> list[Reply]:
    return [reply for reader in readers for reply in list(reader.replies) if start <= reply.scheduled < end]


def hit_share(replies: Sequence[Reply]) -> float | None:
    """The share of answers served from the cache (X-Cache: HIT), 304s included (a bulk answer's X-Cache)."""
    if not replies:
        return None
    return sum(1 for reply in replies if reply.headers.get("x-cache") == "HIT") / len(replies)


def hits_again(readers: Sequence[PathReader], since: float, end: float, share: float) -> float | None:
    """Seconds from `since` to the end of the first one-second window of answers at least `share` HIT."""
    start = since
    while start + 1.0 <= end:
        got = hit_share(_replies(readers, start, start + 1.0))
        if got is not None and got >= share:
            return round(start + 1.0 - since, 3)
        start += 0.1
    return None


def _row(readers: list[PathReader], moments: dict[str, Any], end: float, plan: Plan) -> dict[str, Any]:
    flip, healthy = moments["flip"], moments["healthy"]
    by_path = served_since(readers, flip, healthy) if flip.acked else {}
    visible = worst(by_path) if flip.acked else None
    again = hits_again(readers, healthy, end, HIT_AGAIN[0])
    warm = hit_share(_replies(readers, end - plan.warm, end))
    return {
        "drill": NAME, "title": "Redis Cluster: the slot's primary killed, its replica elected", "how": HOW,
        "store": "redis", "fault_s": round(healthy - moments["killed"], 3),
        **reads_row(readers, moments["killed"], end),
        "recovery_s": again,
        "kill_switch": {"status": flip.status, "acked": flip.acked, "answered_in_s": round(flip.end - flip.start, 4),
                        "visible_within_s": None if visible is None else round(visible, 4)},
        "visible_by_path_s": by_path,
        "hit_share_warm": None if warm is None else round(warm, 4),
        "writes_lost": int(flip.acked and visible is None), "written_without_acknowledgement": 0,
        "servers": 2,
    }  # fmt: skip


def shortfalls(row: dict[str, Any], *, margin: float = 1.0, latency: bool = True) -> list[str]:
    """The bars; tests pass margin=2 (the HIT deadline doubled, the warm miss share doubled) and latency=False
    (the 1 s target is reported, not asserted; the 5 s bound holds either way)."""
    missed = failed_reads(row)
    switch, visible = row["kill_switch"], row["kill_switch"]["visible_within_s"]
    if not switch["acked"]:
        missed.append(f"kill switch refused during the outage ({switch['status']})")
    elif visible is None or visible > BOUND:
        missed.append(f"kill switch not served everywhere within {BOUND:.0f} s of healthy ({row['visible_by_path_s']})")
    elif latency and visible > TARGET:
        missed.append(f"kill switch served everywhere {report.seconds(visible)} after healthy (target 1 s)")
    if row["recovery_s"] is None or row["recovery_s"] > HIT_AGAIN[1] * margin:
        missed.append(f"not {HIT_AGAIN[0]:.0%} HIT within {HIT_AGAIN[1] * margin:.0f} s of healthy")
    warm_bar = 1 - (1 - HIT_WARM) * margin
    if row["hit_share_warm"] is None or row["hit_share_warm"] < warm_bar:
        missed.append(f"HIT share once warm {row['hit_share_warm']} (bar {warm_bar:.0%})")
    return missed


def notes(row: dict[str, Any]) -> str:
    answers = ", ".join(f"{k} {v}" for k, v in sorted(row["answers_during_fault"].items()))
    warm = row["hit_share_warm"]
    return (
        f"healthy {report.seconds(row['fault_s'])} after the kill; kill switch answered {row['kill_switch']['status']} "
        f"during the outage; {HIT_AGAIN[0]:.0%} HIT {report.seconds(row['recovery_s'])} after healthy, "
        f"{'?' if warm is None else f'{warm:.0%}'} once warm; answers after the kill: {answers}"
    )


def drill(plan: Plan) -> dict[str, Any]:
    with running_redis_cluster(node_timeout_ms=1000) as nodes:
        # REDIS_URL names a node that stays up (one of another shard): any node will do, and the one
        # killed is the slot's primary. Deployed, it is the configuration endpoint (DNS over every node).
        slot = redis_keys.revision_key(FLAGS_ENV)
        entry = next(n for n in nodes.nodes if n is not nodes.owner(slot) and n not in nodes.replicas_of(slot))
        settings = (("REDIS_URL", entry.url), ("REDIS_CLUSTER_MODE", "true"))
        with running_cluster(dataclasses.replace(OPTIONS, env=settings)) as cluster:
            return run(nodes, cluster, plan)
