"""Monitoring per environment: alarms on the service's metric names, dashboard, kill-switch notices, budget."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import only_resource, resources_of_type

# runtime/flagservice/telemetry.py and cache_aside.py emit these (DESIGN.md, Observability);
# test_alarm_metrics.py checks the ones alarms read against the handler's real output.
SERVICE_METRICS = {
    "CacheHit",
    "CacheMiss",
    "CacheError",
    "CacheBypass",
    "StaleServed",
    "LookupLatency",
    "LookupLatencyHit",
    "RedisPoolPeakInUse",
    "RedisPoolExhausted",
    "RedisConnectionErrors",
    "CacheBreakerOpen",
    "OutboxPending",
}


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric an alarm reads, as {namespace, name, stat, period, dimensions}."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [
            {
                "namespace": props["Namespace"],
                "name": props["MetricName"],
                "stat": props.get("Statistic") or props.get("ExtendedStatistic"),
                "period": props["Period"],
                "dimensions": {d["Name"]: d["Value"] for d in props.get("Dimensions", [])},
            }
        ]
    return [
        {
            "namespace": m["MetricStat"]["Metric"]["Namespace"],
            "name": m["MetricStat"]["Metric"]["MetricName"],
            "stat": m["MetricStat"]["Stat"],
            "period": m["MetricStat"]["Period"],
            "dimensions": {d["Name"]: d["Value"] for d in m["MetricStat"]["Metric"].get("Dimensions", [])},
        }
        for m in props["Metrics"]
        if "MetricStat" in m
    ]


def monitoring_alarms(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    """Alarms of the Monitoring unit (named flagservice-<env>-...), not the canary's."""
    return [
        alarm
        for alarm in resources_of_type(template_json, "AWS::CloudWatch::Alarm").values()
        if str(alarm["Properties"].get("AlarmName", "")).startswith("flagservice-")
    ]


def alarm_on(template_json: dict[str, Any], metric: str) -> dict[str, Any]:
    found = [a for a in monitoring_alarms(template_json) if metric in {m["name"] for m in metric_stats(a)}]
    assert len(found) == 1, f"{len(found)} alarms read {metric}"
    return found[0]["Properties"]


def alarm_topic_ref(template_json: dict[str, Any]) -> dict[str, str]:
    (ref,) = {
        json.dumps(a["Properties"]["AlarmActions"][0])
        for a in monitoring_alarms(template_json)
        if "KillSwitch" not in a["Properties"]["AlarmName"]
    }
    found: dict[str, str] = json.loads(ref)
    return found


def test_service_metrics_are_read_from_the_environment_namespace_with_the_service_dimension(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    used = [
        m
        for alarm in monitoring_alarms(service_template_json)
        for m in metric_stats(alarm)
        if m["namespace"].startswith("FeatureFlags")
    ]

    assert used
    for metric in used:
        assert metric["namespace"] == f"FeatureFlags/{config.name}"
        if metric["name"] not in {"KillSwitchWrites", "CacheSlowCommands"}:  # metric filters: no dimension
            assert metric["name"] in SERVICE_METRICS
            assert metric["dimensions"] == {"service": "flagservice"}


def test_hit_rate_below_the_minimum_over_an_hour_alarms(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    alarm = alarm_on(service_template_json, "CacheHit")
    (expression,) = [m["Expression"] for m in alarm["Metrics"] if "Expression" in m]

    assert {m["name"] for m in metric_stats({"Properties": alarm})} == {
        "CacheHit",
        "CacheMiss",
        "CacheBypass",
        "StaleServed",
    }
    assert all(m["period"] == 3600 and m["stat"] == "Sum" for m in metric_stats({"Properties": alarm}))
    assert expression.startswith("100 * (FILL(hit, 0) + FILL(stale, 0)) / (")
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == config.alarms.hit_rate_min_percent


@pytest.mark.parametrize(
    ("metric", "stat", "limit", "periods"),
    [
        ("RedisPoolPeakInUse", "Maximum", "pool_in_use_max", 5),
        ("RedisPoolExhausted", "Sum", None, 1),
        ("LookupLatency", "p95", "latency_p95_max_ms", 2),
        ("LookupLatencyHit", "p95", "latency_p95_max_ms", 2),
        ("CacheSlowCommands", "Sum", "slow_commands_max_per_5_minutes", 1),
        ("CacheBreakerOpen", "Maximum", None, 2),
        ("StaleServed", "Sum", "stale_served_max_per_minute", 3),
        ("CacheBypass", "Sum", "bypass_max_per_minute", 3),
        ("OutboxPending", "Maximum", "outbox_pending_max", 5),
    ],
)
def test_service_alarms_use_the_configured_thresholds(
    service_template_json: dict[str, Any],
    config: EnvironmentConfig,
    metric: str,
    stat: str,
    limit: str | None,
    periods: int,
) -> None:
    alarm = next(
        a["Properties"]
        for a in monitoring_alarms(service_template_json)
        if [m["name"] for m in metric_stats(a)] == [metric]
    )

    assert alarm.get("Statistic", alarm.get("ExtendedStatistic")) == stat
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == (getattr(config.alarms, limit) if limit else 0)
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == periods


def test_redis_memory_alarm_watches_every_node(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    alarm = alarm_on(service_template_json, "DatabaseMemoryUsagePercentage")
    nodes = [m["dimensions"]["CacheClusterId"] for m in metric_stats({"Properties": alarm})]

    assert len(nodes) == 1 + config.cache.replicas
    assert [n["Fn::Join"][1][1] for n in nodes] == [f"-{i:03d}" for i in range(1, 2 + config.cache.replicas)]
    assert alarm["Threshold"] == config.alarms.redis_memory_max_percent


def test_alarms_notify_the_alarm_topic_with_actions_as_configured(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    topic = alarm_topic_ref(service_template_json)

    for alarm in monitoring_alarms(service_template_json):
        props = alarm["Properties"]
        if props["AlarmName"].endswith("KillSwitch"):
            continue
        assert props["AlarmActions"] == [topic] and props["OKActions"] == [topic]
        assert props["ActionsEnabled"] is config.alarms.actions_enabled
        assert props["TreatMissingData"] == "notBreaching"


def test_topics_are_encrypted_with_a_key_cloudwatch_and_budgets_may_use(service_template_json: dict[str, Any]) -> None:
    key_id, key = only_resource(service_template_json, "AWS::KMS::Key")
    services = [
        s["Principal"]["Service"] for s in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]
    ]

    assert key["Properties"]["EnableKeyRotation"] is True
    assert sorted(services[0]) == ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"]
    for topic in resources_of_type(service_template_json, "AWS::SNS::Topic").values():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_every_topic_refuses_publishing_without_tls(service_template_json: dict[str, Any]) -> None:
    topics = set(resources_of_type(service_template_json, "AWS::SNS::Topic"))
    policies = resources_of_type(service_template_json, "AWS::SNS::TopicPolicy").values()
    guarded = {
        policy["Properties"]["Topics"][0]["Ref"]
        for policy in policies
        if any(
            s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )
    }

    assert guarded == topics


def test_kill_switch_writes_are_counted_from_the_audit_log_line(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    _, metric_filter = only_resource(service_template_json, "AWS::Logs::MetricFilter")
    function = next(
        f
        for f in resources_of_type(service_template_json, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "flagservice.handler.lambda_handler"
    )
    props = metric_filter["Properties"]

    assert props["FilterPattern"] == '{ ($.message = "flag audit") && ($.kill_switch IS TRUE) }'
    assert props["LogGroupName"] == function["Properties"]["LoggingConfig"]["LogGroup"]
    assert props["MetricTransformations"] == [
        {
            "MetricName": "KillSwitchWrites",
            "MetricNamespace": f"FeatureFlags/{config.name}",
            "MetricValue": "1",
            "Unit": "Count",
        }
    ]


def test_kill_switch_writes_notify_their_own_topic_where_configured(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    alarms = [
        a["Properties"]
        for a in monitoring_alarms(service_template_json)
        if a["Properties"]["AlarmName"].endswith("KillSwitch")
    ]
    topics = resources_of_type(service_template_json, "AWS::SNS::Topic")

    if not config.alarms.kill_switch_notifications:
        assert alarms == [] and len(topics) == 1
        return
    (alarm,) = alarms
    assert len(topics) == 2
    assert alarm["MetricName"] == "KillSwitchWrites" and alarm["Statistic"] == "Sum" and alarm["Period"] == 60
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] != [alarm_topic_ref(service_template_json)]
    assert alarm["AlarmActions"][0]["Ref"] in topics


def test_prod_notifies_every_kill_switch(synthesis: Any) -> None:
    assert synthesis.configs["prod"].alarms.kill_switch_notifications


def test_the_cache_has_a_monthly_budget_filtered_by_service_and_cost_tags(
    service_template: Template, service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    service_template.has_resource_properties(
        "AWS::Budgets::Budget",
        {
            "Budget": {
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": config.alarms.cache_budget_usd_per_month, "Unit": "USD"},
                "BudgetName": f"flagservice-{config.name}-cache",
                "FilterExpression": {
                    "And": Match.array_equals(
                        [
                            {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon ElastiCache"]}},
                            {"Tags": {"Key": "Feature", "Values": ["FeatureFlags"]}},
                            {"Tags": {"Key": "Environment", "Values": [config.name]}},
                        ]
                    )
                },
            },
            "NotificationsWithSubscribers": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Subscribers": [
                                {"SubscriptionType": "SNS", "Address": alarm_topic_ref(service_template_json)}
                            ]
                        }
                    )
                ]
            ),
        },
    )
    assert config.alarms.cache_budget_usd_per_month == 50


def test_budgets_may_publish_to_the_alarm_topic(service_template_json: dict[str, Any]) -> None:
    topic = alarm_topic_ref(service_template_json)
    statements = [
        s
        for p in resources_of_type(service_template_json, "AWS::SNS::TopicPolicy").values()
        if topic in p["Properties"]["Topics"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]

    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "budgets.amazonaws.com"} for s in statements)


def test_a_saved_query_gives_the_hit_rate_per_flag_from_the_emf_metadata(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    queries = {
        q["Properties"]["Name"]: q["Properties"]
        for q in resources_of_type(service_template_json, "AWS::Logs::QueryDefinition").values()
    }
    query = queries[f"flagservice-{config.name}/hit-rate-per-flag"]
    text = query["QueryString"]

    assert "ispresent(flag) and ispresent(cache)" in text
    assert 'strcontains(cache, "HIT")' in text and 'strcontains(cache, "STALE")' in text
    assert "by flag" in text
    assert len(query["LogGroupNames"]) == 1


def dashboard_text(template_json: dict[str, Any]) -> str:
    _, dashboard = only_resource(template_json, "AWS::CloudWatch::Dashboard")
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return "".join(p if isinstance(p, str) else "<token>" for p in parts)


def test_the_dashboard_shows_what_design_md_lists(service_template_json: dict[str, Any]) -> None:
    text = dashboard_text(service_template_json)
    widgets = json.loads(text.replace("<token>", "x"))["widgets"]
    titles = {w["properties"].get("title") for w in widgets}
    expressions = [
        m[0]["expression"]
        for w in widgets
        for m in w["properties"].get("metrics", [])
        if isinstance(m[0], dict) and "expression" in m[0]
    ]

    assert any(e.startswith("100 * (FILL(hit, 0)") for e in expressions)
    for stat in ('"p50"', '"p95"', '"p99"'):
        assert f'"stat":{stat}' in text
    for name in (
        "LookupLatency",
        "LookupLatencyHit",
        "RedisPoolPeakInUse",
        "RedisPoolExhausted",
        "CacheSlowCommands",
        "EngineCPUUtilization",
        "DatabaseMemoryUsagePercentage",
        "Evictions",
        "CurrConnections",
        "DatabaseConnections",
    ):
        assert f'"{name}"' in text, name
    assert {"Hit rate (%)", "Lookup latency (ms)", "Database connections", "Alarms"} <= titles


def test_errors_of_every_version_page_people_and_never_roll_a_deployment_back(
    service_template_json: dict[str, Any],
) -> None:
    """The alias-wide view lives here (paging); the canary's alarms watch the new version alone."""
    alarm = alarm_on(service_template_json, "Errors")
    (metric,) = metric_stats({"Properties": alarm})
    _, group = only_resource(service_template_json, "AWS::CodeDeploy::DeploymentGroup")
    in_group = {a["Name"]["Ref"] for a in group["Properties"]["AlarmConfiguration"]["Alarms"]}
    monitoring_ids = {
        key
        for key, value in resources_of_type(service_template_json, "AWS::CloudWatch::Alarm").items()
        if str(value["Properties"].get("AlarmName", "")).startswith("flagservice-")
    }

    assert (metric["namespace"], metric["stat"]) == ("AWS/Lambda", "Sum")
    assert set(metric["dimensions"]) == {"FunctionName"}  # every version, through the alias or not
    assert alarm["AlarmActions"] == [alarm_topic_ref(service_template_json)]
    assert in_group.isdisjoint(monitoring_ids)
