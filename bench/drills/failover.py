"""Issue 12: Redis fails over to a replica that missed the last write, under open-loop load on every read path.

A real primary and a replica (`redis-server --replicaof`) on loopback; two local servers reach Redis
through the fault proxy, which plays the cache's endpoint. With every path of both servers read open
loop (common/readers.py: single, OFREP single, bulk, conditional bulk):

1. the replica is cut off from its primary (`REPLICAOF NO ONE`: it keeps its data, receives nothing more);
2. the kill switch is written (PATCH `{"enabled": false}` through server 0): its 2xx is the acknowledgement;
3. `seen_gap` later (every server has seen the new revision), the primary is killed (SIGKILL);
4. `outage` later the endpoint is switched to the replica (the proxy retargeted): the replica lacks
   the kill switch's cache step, and its revision is behind the one the servers saw;
5. the readers read on for `observe` seconds.

Measured: from the switch until every server serves the kill switch on every path and keeps serving
it (DESIGN.md: bound 5 s, target 1 s; "never" if not within the observation); failed reads (bar: 0);
reads after the acknowledgement and before the switch that showed the older version; latency from
the schedule, from the primary's death to the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from bench.common import report
from bench.common.cluster import Cluster, ClusterOptions, running_cluster
from bench.common.load import write_flag
from bench.common.readers import run_readers
from bench.drills.open_loop import (
    OpenLoopPlan,
    delays_by_path,
    failed_reads,
    open_readers,
    reads_row,
    seed,
    served_since,
    shown_older,
    worst,
)

NAME = "redis-failover"
OPTIONS = ClusterOptions(servers=2, proxied_redis=True, redis_replica=True, flags_env="failover")
KILL_SWITCH = "failover-kill-switch"
FILLERS = tuple(f"failover-flag-{i}" for i in range(5))
BOUND = 5.0  # DESIGN.md: served everywhere within 5 s of the switch
TARGET = 1.0
HOW = ("a replica (`--replicaof`) is cut off from its primary (`REPLICAOF NO ONE`), the kill switch is written, "
       "the primary is killed (SIGKILL) and the endpoint (the fault proxy) is switched to the replica")  # fmt: skip


@dataclass(frozen=True)
class Plan(OpenLoopPlan):
    seen_gap: float
    outage: float
    observe: float


SHORT = Plan(rate=20.0, baseline=1.0, seen_gap=0.5, outage=0.5, observe=BOUND + 2.0)
LONG = Plan(rate=50.0, baseline=3.0, seen_gap=1.0, outage=1.0, observe=3 * BOUND)


def _promote(cluster: Cluster) -> None:
    assert cluster.replica is not None and cluster.proxy is not None
    client = redis.Redis.from_url(cluster.replica.url, socket_timeout=5)
    client.replicaof("NO", "ONE")
    if client.info("replication").get("role") != "master":
        raise RuntimeError("the replica did not become a primary")


def _fail_over(cluster: Cluster, plan: Plan) -> dict[str, Any]:
    """Steps 1 to 4 of the module docstring; their times (time.monotonic()) and the kill switch's write."""
    assert cluster.replica is not None and cluster.proxy is not None
    _promote(cluster)  # cut off: from here on the replica receives nothing
    flip = write_flag(cluster.servers[0], "PATCH", KILL_SWITCH, {"enabled": False})
    time.sleep(plan.seen_gap)
    killed = time.monotonic()
    cluster.redis.kill()
    time.sleep(plan.outage)
    cluster.proxy.retarget(("127.0.0.1", cluster.replica.port))
    return {"flip": flip, "killed": killed, "switched": time.monotonic()}


def run(cluster: Cluster, plan: Plan) -> dict[str, Any]:
    """The drill on a fresh cluster of OPTIONS (its primary dies: one drill per cluster)."""
    seed(cluster, [KILL_SWITCH, *FILLERS])
    readers = open_readers(cluster.servers, KILL_SWITCH, FILLERS, plan.rate)
    loop = run_readers(readers)
    try:
        time.sleep(plan.baseline)
        moments = _fail_over(cluster, plan)
        time.sleep(plan.observe)
        end = time.monotonic()
    finally:
        loop.stop()
    return _row(readers, moments, end) | {"generator_lag_s": loop.lag_summary()}


def _row(readers: list[Any], moments: dict[str, Any], end: float) -> dict[str, Any]:
    flip, switched = moments["flip"], moments["switched"]
    by_path = served_since(readers, flip, switched) if flip.acked else {}
    visible = worst(by_path) if flip.acked else None
    return {
        "drill": NAME, "title": "Redis failover to a replica that missed the last write", "how": HOW,
        "store": "redis", "fault_s": round(switched - moments["killed"], 3),
        **reads_row(readers, moments["killed"], end),
        "recovery_s": None if visible is None else round(visible, 4),
        "kill_switch": {"status": flip.status, "acked": flip.acked, "answered_in_s": round(flip.end - flip.start, 4),
                        "visible_within_s": None if visible is None else round(visible, 4)},
        "visible_by_path_s": by_path,
        "older_before_switch": shown_older(readers, flip, flip.end + TARGET, switched) if flip.acked else None,
        "writes_lost": int(flip.acked and visible is None), "written_without_acknowledgement": 0,
        "servers": 2,
    }  # fmt: skip


def shortfalls(row: dict[str, Any], *, margin: float = 1.0, latency: bool = True) -> list[str]:
    """The bound (5 s, the same in tests: 5x the target), 0 failed reads; `latency`: also the 1 s target."""
    missed = failed_reads(row)
    switch = row["kill_switch"]
    visible = switch["visible_within_s"]
    if not switch["acked"]:
        missed.append(f"kill switch refused ({switch['status']})")
    elif visible is None or visible > BOUND:
        missed.append(f"kill switch not served everywhere within {BOUND:.0f} s of the switch ({delays_by_path(row)})")
    elif latency and visible > TARGET * margin:
        missed.append(f"kill switch served everywhere {report.seconds(visible)} after the switch (target 1 s)")
    return missed


def notes(row: dict[str, Any]) -> str:
    answers = ", ".join(f"{k} {v}" for k, v in sorted(row["answers_during_fault"].items()))
    return (
        f"endpoint switched {report.seconds(row['fault_s'])} after the primary died; "
        f"{row['older_before_switch']} older reads between the 2xx (+1 s) and the switch; answers after: {answers}"
    )


def drill(plan: Plan) -> dict[str, Any]:
    with running_cluster(OPTIONS) as cluster:
        return run(cluster, plan)
