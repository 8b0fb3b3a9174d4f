"""The cache's hourly CloudWatch metrics, per node, for the window the rule reads (GetMetricData).

Hourly statistics on purpose: CloudWatch keeps 1-minute data 15 days and 5-minute data 63 days, but
hourly data 455 days, so 90 days of hours are all there. One GetMetricData request carries every
metric of every node (at most 6 nodes x 7 metrics = 42 of its 500 queries); its pages (NextToken)
are followed until the last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

NAMESPACE = "AWS/ElastiCache"
PERIOD_SECONDS = 3600


@dataclass(frozen=True)
class CacheMetric:
    key: str  # the name the rule uses
    name: str  # CloudWatch's metric name
    statistic: str  # of each hour


METRICS = (
    CacheMetric("memory", "DatabaseMemoryUsagePercentage", "Maximum"),
    CacheMetric("evictions", "Evictions", "Sum"),
    CacheMetric("engine_cpu", "EngineCPUUtilization", "Average"),
    CacheMetric("cpu", "CPUUtilization", "Average"),
    CacheMetric("connections", "CurrConnections", "Maximum"),
    CacheMetric("network_in", "NetworkBytesIn", "Sum"),
    CacheMetric("network_out", "NetworkBytesOut", "Sum"),
)

# metric key -> node id -> [(hour as a POSIX timestamp, value)]
Points = dict[str, dict[str, list[tuple[float, float]]]]


def node_ids(group_id: str, replicas: int, shards: int | None = None) -> list[str]:
    """ElastiCache names a replication group's nodes `<group>-001`, `-002`, ...; in cluster mode (`shards` node
    groups) `<group>-0001-001`, `-0001-002`, `-0002-001`, ... (stacks/constructs/cache.py, CacheNodes)."""
    nodes = range(1, 2 + replicas)
    if shards is None:
        return [f"{group_id}-{index:03d}" for index in nodes]
    return [f"{group_id}-{shard:04d}-{index:03d}" for shard in range(1, 1 + shards) for index in nodes]


def _queries(nodes: Sequence[str]) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str]]]:
    queries, names = [], {}
    for m, metric in enumerate(METRICS):
        for n, node in enumerate(nodes):
            query_id = f"m{m}n{n}"
            names[query_id] = (metric.key, node)
            stat = {"Metric": {"Namespace": NAMESPACE, "MetricName": metric.name,
                               "Dimensions": [{"Name": "CacheClusterId", "Value": node}]},
                    "Period": PERIOD_SECONDS, "Stat": metric.statistic}  # fmt: skip
            queries.append({"Id": query_id, "MetricStat": stat, "ReturnData": True})
    return queries, names


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """`days` whole days ending at the start of the current hour (the hour in progress is incomplete)."""
    end = now.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(days=days), end


def fetch(cloudwatch: Any, nodes: Sequence[str], start: datetime, end: datetime) -> Points:
    """Every metric of METRICS for every node, hourly, from `start` to `end` (all pages)."""
    queries, names = _queries(nodes)
    points: Points = {metric.key: {node: [] for node in nodes} for metric in METRICS}
    request: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end,
                               "ScanBy": "TimestampAscending"}  # fmt: skip
    while True:
        answer = cloudwatch.get_metric_data(**request)
        for result in answer["MetricDataResults"]:
            key, node = names[result["Id"]]
            stamps = [stamp.timestamp() for stamp in result["Timestamps"]]
            points[key][node].extend(zip(stamps, (float(v) for v in result["Values"]), strict=True))
        if not answer.get("NextToken"):
            return points
        request["NextToken"] = answer["NextToken"]


def values(points: Points) -> dict[str, dict[str, list[float]]]:
    """The values alone, per metric and node (what the percentiles need)."""
    return {key: {node: [v for _, v in points] for node, points in nodes.items()} for key, nodes in points.items()}
