"""The rounds of each hold point on one cluster, under readers on every path."""

from __future__ import annotations

from typing import Any

from bench.common import report
from bench.common.cluster import Cluster, running_cluster
from bench.common.readers import etag_reuse, readers_for, run_readers
from bench.consistency.dbhold import POINTS, Hold
from bench.consistency.ordering.plan import HELD, KILL_SWITCH, OPTIONS, TTL_SECONDS, Plan
from bench.consistency.ordering.races import commit_order_round, if_match_round, prepare
from bench.consistency.ordering.verdicts import path_rows, race_summary


def commit_order(cluster: Cluster, point: str, plan: Plan) -> dict[str, Any]:
    """`plan.rounds` commit-order rounds at `point` under readers on every path."""
    readers = readers_for(cluster.servers[2:], [HELD, KILL_SWITCH], plan.rate)
    hold = Hold(cluster.postgres.url)
    loop = run_readers(readers)
    try:
        rounds = [commit_order_round(cluster, hold, point, plan) for _ in range(plan.rounds)]
    finally:
        loop.stop()
        hold.close()
    return {
        "point": point,
        "rounds": [race_summary(one) for one in rounds],
        "paths": path_rows(rounds, readers, plan.grace),
        "etags_reused": len(etag_reuse(readers)),
        "generator_lag_s": loop.lag_summary(),
        "grace_s": plan.grace,
    }


def if_match_rounds(cluster: Cluster, point: str, rounds: int) -> list[dict[str, Any]]:
    hold = Hold(cluster.postgres.url)
    try:
        return [if_match_round(cluster, hold, point, number) for number in range(rounds)]
    finally:
        hold.close()


def run_point(cluster: Cluster, point: str, plan: Plan) -> dict[str, Any]:
    return commit_order(cluster, point, plan) | {"if_match": if_match_rounds(cluster, point, plan.rounds)}


def run(plan: Plan, points: tuple[str, ...] = POINTS) -> dict[str, Any]:
    with running_cluster(OPTIONS) as cluster:
        prepare(cluster)
        results = [run_point(cluster, point, plan) for point in points]
        machine = report.machine(cluster)
    return {"kind": "ordering", "plan": vars(plan), "servers": OPTIONS.servers, "read_servers": OPTIONS.servers - 2,
            "cache_ttl_s": TTL_SECONDS,
            "machine": machine, "points": results}  # fmt: skip
