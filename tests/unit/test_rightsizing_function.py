"""The right-sizing function end to end on moto: generated hourly series put into CloudWatch, one SNS message out.

Each branch gets its own series (hourly): upsize, downsize, keep, evictions, a new cache with a few days
of data, and a node type the price table lacks. The message is read back through an SQS queue subscribed
to the ops topic; the function's return value is what `flagctl rightsize` prints.

moto answers GetMetricData in time proportional to hours x stored points x queries, so the branches
read a 15-day window (LOOKBACK_DAYS; the rule needs 14 days) of one node; one test reads the real
90 days, one reads two nodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from flagservice.lambda_context import LocalContext
from flagservice.rightsizing import handler
from flagservice.rightsizing.metrics import METRICS, NAMESPACE
from tests.moto_aws import aws  # noqa: F401 - fixture

GROUP = "flags-prod-cache-1"
NODES = (f"{GROUP}-001", f"{GROUP}-002")
DAYS = 15
GB = 1024**3


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """One moment per test, read by the series and by the function alike: with the clock read at put time and
    again at invoke, a test running across an hour boundary put its newest hour in the window's last-but-one."""
    moment = datetime.now(UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return moment if tz is None or tz is UTC else moment.astimezone(tz)

    monkeypatch.setattr(handler, "datetime", Frozen)
    return moment


@pytest.fixture
def ops(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:  # noqa: F811
    """The ops topic with a queue subscribed to it, and the function's settings pointing at it."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="ops")["TopicArn"]
    queue = sqs.create_queue(QueueName="ops-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    for name, value in {"FLAGS_ENV": "prod", "CACHE_GROUP_ID": GROUP, "CACHE_REPLICAS": "0", "LOOKBACK_DAYS": str(DAYS),
                        "CACHE_NODE_TYPE": "cache.t4g.small", "CACHE_ENGINE": "valkey",
                        "OPS_TOPIC_ARN": topic}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    yield {"queue": queue, "sqs": sqs}


def put_series(node: str, metric: str, values: list[float]) -> None:
    """One value per hour, the newest an hour before this hour, into moto's CloudWatch (this hour by the function's
    clock, frozen per test: neither collection nor the puts may cross an hour the function then sees)."""
    end = handler.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    data = [{"MetricName": metric, "Dimensions": [{"Name": "CacheClusterId", "Value": node}],
             "Timestamp": end - timedelta(hours=len(values) - i), "Value": value}
            for i, value in enumerate(values)]  # fmt: skip
    cloudwatch = boto3.client("cloudwatch")
    for start in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 1000])


def put_cache(
    memory: float, *, days: int = DAYS, high_hours: int = 0, eviction_hours: int = 0, nodes: int = 1, more: bool = True
) -> None:
    """`nodes` nodes: memory flat at `memory` % with `high_hours` hours at 95 % (spread out); evictions in the first
    `eviction_hours` hours; with `more`, CPU, connections and network too."""
    hours = days * 24
    for node in NODES[:nodes]:
        put_series(node, "DatabaseMemoryUsagePercentage", [95.0 if i % 10 == 0 and i // 10 < high_hours else memory
                                                           for i in range(hours)])  # fmt: skip
        put_series(node, "Evictions", [12.0 if i < eviction_hours else 0.0 for i in range(hours)])
        if not more:
            continue
        put_series(node, "EngineCPUUtilization", [4.0 + (i % 24) / 4 for i in range(hours)])
        put_series(node, "CurrConnections", [30.0 + i % 7 for i in range(hours)])
        put_series(node, "NetworkBytesIn", [0.2 * GB] * hours)


def invoke(ops: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the handler; return what it returned and every message the ops queue received."""
    returned = handler.lambda_handler({"source": "test"}, LocalContext())
    got = ops["sqs"].receive_message(QueueUrl=ops["queue"], MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return returned, [{"body": m["Body"]} for m in got.get("Messages", [])]


def recommendation_in(message: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(message[message.index("{") :])
    return parsed


@pytest.mark.parametrize(
    ("cache", "action", "recommended"),
    [
        ({"memory": 60.0, "high_hours": 20}, "upsize", "cache.t4g.medium"),
        ({"memory": 12.0}, "downsize", "cache.t4g.micro"),
        ({"memory": 55.0, "high_hours": 10}, "keep", "cache.t4g.small"),
        ({"memory": 30.0, "eviction_hours": 8}, "upsize", "cache.t4g.medium"),
        ({"memory": 95.0, "days": 5}, "keep", "cache.t4g.small"),
    ],
    ids=["upsize", "downsize", "keep", "evictions", "new-cache"],
)
def test_one_recommendation_per_branch_reaches_the_ops_topic(
    ops: dict[str, Any], cache: dict[str, Any], action: str, recommended: str
) -> None:
    put_cache(**cache)

    returned, messages = invoke(ops)

    assert len(messages) == 1
    published = recommendation_in(messages[0]["body"])
    assert published == json.loads(json.dumps(returned))
    assert (published["action"], published["node_type_now"], published["node_type_recommended"]) == (
        action, "cache.t4g.small", recommended)  # fmt: skip
    assert f"Recommendation: {action}: cache.t4g.small -> {recommended}" in messages[0]["body"]
    assert published["nodes"] == 1 and published["monthly_usd_now"] == round(0.0256 * 730, 2)


def test_ninety_days_of_hours_are_read(ops: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The real window: 109 of 2,160 hours above 80 % make the p95 (nearest rank) cross the line."""
    monkeypatch.setenv("LOOKBACK_DAYS", "90")
    put_cache(60.0, days=90, high_hours=109, more=False)

    returned, _ = invoke(ops)

    assert returned["evidence"]["memory_hours"] == 90 * 24
    assert (returned["action"], returned["evidence"]["memory_p95_percent"]) == ("upsize", 95.0)


def test_every_node_is_read_and_the_fuller_one_decides(ops: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_REPLICAS", "1")
    put_series(NODES[0], "DatabaseMemoryUsagePercentage", [50.0] * DAYS * 24)
    put_series(NODES[1], "DatabaseMemoryUsagePercentage", [85.0] * DAYS * 24)
    put_series(NODES[1], "Evictions", [0.0] * (DAYS * 24 - 3) + [1.0] * 3)

    returned, messages = invoke(ops)

    assert (returned["action"], returned["evidence"]["memory_p95_node"]) == ("upsize", NODES[1])
    assert returned["nodes"] == 2 and returned["monthly_usd_recommended"] == round(0.052 * 730 * 2, 2)
    assert returned["evidence"]["eviction_hours"] == 3 and len(messages) == 1


def test_the_numbers_that_decided_are_read_from_every_metric(ops: dict[str, Any]) -> None:
    put_cache(60.0, high_hours=30, eviction_hours=2)

    returned, _ = invoke(ops)

    seen = returned["evidence"]
    assert seen["memory_hours"] == DAYS * 24
    assert seen["memory_p95_percent"] == 95.0
    assert seen["eviction_hours"] == 2 and seen["evictions_total"] == 2 * 12.0
    assert seen["engine_cpu_p95_percent"] == pytest.approx(4.0 + 22 / 4)
    assert seen["connections_p95"] == 36.0
    assert seen["network_in_p95_bytes_per_hour"] == pytest.approx(0.2 * GB)
    assert seen["cpu_p95_percent"] is None  # not published in this account: said, not invented


def test_a_new_cache_says_insufficient_data(ops: dict[str, Any]) -> None:
    put_cache(95.0, days=3)

    returned, _ = invoke(ops)

    assert "insufficient data: 72 hourly memory points" in returned["reason"]


def test_an_unknown_node_type_is_still_one_message(ops: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_NODE_TYPE", "cache.x9.enormous")
    put_cache(90.0)

    returned, messages = invoke(ops)

    assert len(messages) == 1 and returned["action"] == "keep"
    assert "not in the price table" in returned["reason"] and returned["monthly_usd_now"] is None
    assert "Monthly list price: unknown now, unknown after" in messages[0]["body"]


def test_no_metrics_at_all_keeps(ops: dict[str, Any]) -> None:
    returned, messages = invoke(ops)

    assert returned["action"] == "keep" and returned["evidence"]["memory_hours"] == 0 and len(messages) == 1


def test_bad_settings_fail_loudly_and_publish_nothing(ops: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_REPLICAS", "-1")

    with pytest.raises(ValueError, match="CACHE_REPLICAS"):
        handler.lambda_handler({}, LocalContext())
    assert not ops["sqs"].receive_message(QueueUrl=ops["queue"]).get("Messages")


def test_every_metric_is_asked_hourly_for_every_node(ops: dict[str, Any], clock: datetime) -> None:
    cloudwatch = boto3.client("cloudwatch")
    asked: list[dict[str, Any]] = []
    original = cloudwatch.get_metric_data

    def spy(**request: Any) -> Any:
        asked.append(request)
        return original(**request)

    cloudwatch.get_metric_data = spy
    settings = handler.RightsizingSettings.model_validate(
        {"FLAGS_ENV": "prod", "CACHE_GROUP_ID": GROUP, "CACHE_REPLICAS": 1, "CACHE_NODE_TYPE": "cache.t4g.small",
         "CACHE_ENGINE": "valkey", "OPS_TOPIC_ARN": "arn:aws:sns:eu-central-1:123456789012:ops"})  # fmt: skip
    handler.analyse(settings, cloudwatch, clock)

    queries = asked[0]["MetricDataQueries"]  # nothing stored: only the request is looked at
    assert {q["MetricStat"]["Period"] for q in queries} == {3600}
    assert len(queries) == len(METRICS) * len(NODES)
    assert {(q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Metric"]["Dimensions"][0]["Value"])
            for q in queries} == {(m.name, node) for m in METRICS for node in NODES}  # fmt: skip
    assert asked[0]["EndTime"] - asked[0]["StartTime"] == timedelta(days=90)


def test_a_cluster_mode_cache_is_read_node_by_node_of_every_shard(
    ops: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cluster mode names nodes `<group>-<shard>-<node>`: read as `<group>-001`, it had no data, ever (keep)."""
    # Given a cluster-mode cache of 2 shards of 2 nodes whose second shard (the one with the slot) is full
    monkeypatch.setenv("CACHE_REPLICAS", "1")
    monkeypatch.setenv("CACHE_SHARDS", "2")
    full = f"{GROUP}-0002-001"
    put_series(f"{GROUP}-0001-001", "DatabaseMemoryUsagePercentage", [3.0] * DAYS * 24)
    put_series(full, "DatabaseMemoryUsagePercentage", [85.0] * DAYS * 24)

    # When the function runs
    returned, messages = invoke(ops)

    # Then the full node decides, and every node is priced
    assert (returned["action"], returned["evidence"]["memory_p95_node"]) == ("upsize", full)
    assert returned["nodes"] == 4 and len(messages) == 1
