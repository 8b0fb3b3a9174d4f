"""Monitoring per environment: alarms on the service's metric names, dashboard, kill-switch notices, budget."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Matcher, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis

ALARM = "AWS::CloudWatch::Alarm"
MONITORING = Match.string_like_regexp("^flagservice-")  # the Monitoring unit's alarm names; the canary's have none
PAGING = Match.string_like_regexp("^flagservice-.*(?<!-KillSwitch)$")  # all but the kill-switch notification
SERVICE_DIMENSION = [{"Name": "service", "Value": "flagservice"}]
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
FILTER_METRICS = {"KillSwitchWrites", "CacheSlowCommands"}  # counted by metric filters: no dimension
FEATURE_FLAGS = Match.string_like_regexp("^FeatureFlags")  # a namespace of ours, whichever environment


def one_of(names: Iterable[str]) -> Matcher:
    return Match.string_like_regexp("^(" + "|".join(sorted(names)) + ")$")


def monitoring_alarms(template: Template, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Monitoring unit's alarms (not the canary's) that match `properties`, by logical id."""
    pattern = {"Properties": {"AlarmName": MONITORING, **(properties or {})}}
    found: dict[str, Any] = template.find_resources(ALARM, pattern)
    return found


def alarm_topic(template: Template) -> Any:
    """The alarm topic, as the stack publishes it for on-call to subscribe (`{"Ref": ...}`)."""
    topic = Capture()
    template.has_output("AlarmTopicArn", {"Value": topic})
    return topic.as_object()


def test_service_metrics_are_read_from_the_environment_namespace_with_the_service_dimension(
    service_template: Template, config: EnvironmentConfig
) -> None:
    namespace = f"FeatureFlags/{config.name}"

    # Given our alarms on a metric of ours: a handler metric with the service dimension, or a metric
    # filter's count, in this environment's namespace
    reading_ours = monitoring_alarms(service_template, {"Namespace": FEATURE_FLAGS})
    emitted = monitoring_alarms(
        service_template,
        {"Namespace": namespace, "MetricName": one_of(SERVICE_METRICS), "Dimensions": SERVICE_DIMENSION},
    )
    counted = monitoring_alarms(service_template, {"Namespace": namespace, "MetricName": one_of(FILTER_METRICS)})
    ours_in_math = Match.object_like({"MetricStat": {"Metric": {"Namespace": FEATURE_FLAGS}}})
    math_on_ours = monitoring_alarms(service_template, {"Metrics": Match.array_with([ours_in_math])})

    # Then those are all of them
    assert reading_ours and set(reading_ours) == set(emitted) | set(counted)
    # The one metric-math alarm on our metrics: each of its metrics is checked in the next test.
    assert [alarm["Properties"]["AlarmName"] for alarm in math_on_ours.values()] == [
        f"flagservice-{config.name}-HitRateLow"
    ]


def test_hit_rate_below_the_minimum_over_an_hour_alarms(service_template: Template, config: EnvironmentConfig) -> None:
    def hourly_sum(metric_id: str, name: str) -> dict[str, Any]:
        metric = {"MetricName": name, "Namespace": f"FeatureFlags/{config.name}", "Dimensions": SERVICE_DIMENSION}
        return {"Id": metric_id, "MetricStat": {"Metric": metric, "Period": 3600, "Stat": "Sum"}}

    rate = Match.string_like_regexp(r"^100 \* \(FILL\(hit, 0\) \+ FILL\(stale, 0\)\) / \(")
    outcomes = {"hit": "CacheHit", "stale": "StaleServed", "miss": "CacheMiss", "bypass": "CacheBypass"}

    service_template.resource_properties_count_is(
        ALARM,
        {
            "Metrics": [{"Expression": rate}, *(hourly_sum(key, name) for key, name in outcomes.items())],
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": config.alarms.hit_rate_min_percent,
        },
        1,
    )


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
    service_template: Template,
    config: EnvironmentConfig,
    metric: str,
    stat: str,
    limit: str | None,
    periods: int,
) -> None:
    statistic = {"ExtendedStatistic": stat} if stat.startswith("p") else {"Statistic": stat}

    service_template.resource_properties_count_is(
        ALARM,
        {
            "AlarmName": MONITORING,
            "MetricName": metric,
            **statistic,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": getattr(config.alarms, limit) if limit else 0,
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods,
        },
        1,
    )


def test_redis_memory_alarm_watches_every_node(service_template: Template, config: EnvironmentConfig) -> None:
    def node(index: int) -> list[dict[str, Any]]:
        value = {"Fn::Join": ["", [Match.any_value(), f"-{index:03d}"]]}  # `<replication group id>-001`, ...
        return [{"Name": "CacheClusterId", "Value": value}]

    name, nodes = "DatabaseMemoryUsagePercentage", range(1, 2 + config.cache.replicas)
    if config.cache.replicas == 0:
        reads: dict[str, Any] = {"MetricName": name, "Dimensions": node(1)}
    else:
        per_node = [{"MetricStat": {"Metric": {"MetricName": name, "Dimensions": node(i)}}} for i in nodes]
        reads = {"Metrics": [{"Expression": Match.string_like_regexp("^MAX")}, *per_node]}

    service_template.resource_properties_count_is(
        ALARM, {**reads, "Threshold": config.alarms.redis_memory_max_percent}, 1
    )


def test_alarms_notify_the_alarm_topic_with_actions_as_configured(
    service_template: Template, config: EnvironmentConfig
) -> None:
    topic = alarm_topic(service_template)

    paging = monitoring_alarms(service_template, {"AlarmName": PAGING})
    notifying = monitoring_alarms(
        service_template,
        {
            "AlarmName": PAGING,
            "AlarmActions": [topic],
            "OKActions": [topic],
            "ActionsEnabled": config.alarms.actions_enabled,
            "TreatMissingData": "notBreaching",
        },
    )

    assert paging and set(notifying) == set(paging)


def test_topics_are_encrypted_with_a_key_cloudwatch_and_budgets_may_use(service_template: Template) -> None:
    service_template.resource_count_is("AWS::KMS::Key", 1)
    (key,) = service_template.find_resources("AWS::KMS::Key")
    services = Match.object_like({"Principal": {"Service": ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"]}})

    service_template.has_resource_properties(
        "AWS::KMS::Key", {"EnableKeyRotation": True, "KeyPolicy": {"Statement": Match.array_with([services])}}
    )
    service_template.all_resources_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}})


def test_every_topic_refuses_publishing_without_tls(service_template: Template) -> None:
    refuses_plain_http = Match.object_like({"Condition": {"Bool": {"aws:SecureTransport": "false"}}})

    for topic in service_template.find_resources("AWS::SNS::Topic"):
        service_template.has_resource_properties(
            "AWS::SNS::TopicPolicy",
            {"Topics": [{"Ref": topic}], "PolicyDocument": {"Statement": Match.array_with([refuses_plain_http])}},
        )


def test_kill_switch_writes_are_counted_from_the_audit_log_line(
    service_template: Template, config: EnvironmentConfig
) -> None:
    # Given the flag function's log group
    log_group = Capture()
    service_template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "flagservice.handler.lambda_handler", "LoggingConfig": {"LogGroup": log_group}},
    )

    # Then the one metric filter counts its kill-switch audit lines into the environment's namespace
    service_template.resource_count_is("AWS::Logs::MetricFilter", 1)
    service_template.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "FilterPattern": '{ ($.message = "flag audit") && ($.kill_switch IS TRUE) }',
            "LogGroupName": log_group.as_object(),
            "MetricTransformations": Match.exact(
                [
                    {
                        "MetricName": "KillSwitchWrites",
                        "MetricNamespace": f"FeatureFlags/{config.name}",
                        "MetricValue": "1",
                        "Unit": "Count",
                    }
                ]
            ),
        },
    )


def test_kill_switch_writes_notify_their_own_topic_where_configured(
    service_template: Template, config: EnvironmentConfig
) -> None:
    kill_switch = {"AlarmName": f"flagservice-{config.name}-KillSwitch"}
    if not config.alarms.kill_switch_notifications:
        service_template.resource_properties_count_is(ALARM, kill_switch, 0)
        service_template.resource_count_is("AWS::SNS::Topic", 1)
        return
    # Given the topics of the environment
    topics = service_template.find_resources("AWS::SNS::Topic")

    # When the kill-switch alarm is found, with the topic it notifies
    notified = Capture()
    service_template.has_resource_properties(
        ALARM,
        {
            **kill_switch,
            "MetricName": "KillSwitchWrites",
            "Statistic": "Sum",
            "Period": 60,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": notified}],
        },
    )

    # Then that topic is a second one, not the alarm topic
    assert len(topics) == 2
    assert notified.as_string() in topics and {"Ref": notified.as_string()} != alarm_topic(service_template)


def test_prod_notifies_every_kill_switch(synthesis: Synthesis) -> None:
    prod = synthesis.template("prod", "service")

    prod.has_resource_properties(
        ALARM, {"AlarmName": "flagservice-prod-KillSwitch", "AlarmActions": [{"Ref": Match.any_value()}]}
    )
    prod.has_output("KillSwitchTopicArn", {"Value": {"Ref": Match.any_value()}})


def test_the_cache_has_a_monthly_budget_filtered_by_service_and_cost_tags(
    service_template: Template, config: EnvironmentConfig
) -> None:
    service_template.has_resource_properties(
        "AWS::Budgets::Budget",
        {
            "Budget": {
                "BudgetType": "COST",
                "TimeUnit": "MONTHLY",
                "BudgetLimit": {"Amount": 50, "Unit": "USD"},  # cdk.json's alarms.cacheBudgetUsdPerMonth
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
                        {"Subscribers": [{"SubscriptionType": "SNS", "Address": alarm_topic(service_template)}]}
                    )
                ]
            ),
        },
    )


def test_budgets_may_publish_to_the_alarm_topic(service_template: Template) -> None:
    budgets = Match.object_like({"Effect": "Allow", "Principal": Match.exact({"Service": "budgets.amazonaws.com"})})

    service_template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": Match.array_with([alarm_topic(service_template)]),
            "PolicyDocument": {"Statement": Match.array_with([budgets])},
        },
    )


def test_a_saved_query_gives_the_hit_rate_per_flag_from_the_emf_metadata(
    service_template: Template, config: EnvironmentConfig
) -> None:
    query = Capture()
    service_template.has_resource_properties(
        "AWS::Logs::QueryDefinition",
        {
            "Name": f"flagservice-{config.name}/hit-rate-per-flag",
            "QueryString": query,
            "LogGroupNames": [Match.any_value()],
        },
    )
    text = query.as_string()

    assert "ispresent(flag) and ispresent(cache)" in text
    assert 'strcontains(cache, "HIT")' in text and 'strcontains(cache, "STALE")' in text
    assert "by flag" in text


def dashboard_text(template: Template) -> str:
    """The one dashboard's body, with CloudFormation tokens (region, alarm ARNs) shown as `<token>`."""
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    parts = Capture()
    template.has_resource_properties("AWS::CloudWatch::Dashboard", {"DashboardBody": {"Fn::Join": ["", parts]}})
    return "".join(p if isinstance(p, str) else "<token>" for p in parts.as_array())


def test_the_dashboard_shows_what_design_md_lists(service_template: Template) -> None:
    # Given the dashboard's widgets
    text = dashboard_text(service_template)
    widgets = json.loads(text.replace("<token>", "x"))["widgets"]

    # When their titles and metric-math expressions are listed
    titles = {w["properties"].get("title") for w in widgets}
    expressions = [
        m[0]["expression"]
        for w in widgets
        for m in w["properties"].get("metrics", [])
        if isinstance(m[0], dict) and "expression" in m[0]
    ]

    # Then the hit rate, the latency percentiles and every metric DESIGN.md lists are on it
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


def test_errors_of_every_version_page_people_and_never_roll_a_deployment_back(service_template: Template) -> None:
    """The alias-wide view lives here (paging); the canary's alarms watch the new version alone."""
    # Given the alarms a deployment rolls back on
    rollback = Capture()
    service_template.has_resource_properties(
        "AWS::CodeDeploy::DeploymentGroup", {"AlarmConfiguration": {"Alarms": rollback}}
    )
    rolls_back = {alarm["Name"]["Ref"] for alarm in rollback.as_array()}

    # Then one alarm of ours reads Lambda's Errors of every version (through the alias or not) and pages
    flag_errors = Match.string_like_regexp("^flagservice-.*-FunctionErrors$")  # the push functions have their own
    service_template.resource_properties_count_is(ALARM, {"AlarmName": flag_errors, "MetricName": "Errors"}, 1)
    service_template.has_resource_properties(
        ALARM,
        {
            "AlarmName": flag_errors,
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Statistic": "Sum",
            "Dimensions": [{"Name": "FunctionName", "Value": Match.any_value()}],
            "AlarmActions": [alarm_topic(service_template)],
        },
    )
    # And none of ours is among those a deployment rolls back on
    assert rolls_back.isdisjoint(monitoring_alarms(service_template))
