"""The cache right-sizing function (issue 19): outside the VPC, scheduled from cdk.json, least privilege, watched."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from stacks.bundling import runtime_files
from stacks.config import EnvironmentConfig, RightsizingConfig, parse_environments, read_cdk_json
from stacks.constructs.rightsizing import HANDLER
from stacks.naming import rightsizing_function_name
from tests.infrastructure.conftest import captured, function_id, only_id, published


def role_statements(template: Template, function: str) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the function's role."""
    role = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": HANDLER, "Role": {"Fn::GetAtt": [role, "Arn"]}}
    )
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role.as_string()}]}})
    return [s for policy in policies.values() for s in policy["Properties"]["PolicyDocument"]["Statement"]]


def test_the_function_runs_outside_the_vpc_with_the_cache_it_judges(
    service_template: Template, config: EnvironmentConfig
) -> None:
    function = function_id(service_template, HANDLER)
    props = service_template.to_json()["Resources"][function]["Properties"]

    assert "VpcConfig" not in props
    assert props["FunctionName"] == rightsizing_function_name(config.name)
    variables = props["Environment"]["Variables"]
    assert {k: variables[k] for k in ("CACHE_NODE_TYPE", "CACHE_ENGINE", "CACHE_REPLICAS", "LOOKBACK_DAYS")} == {
        "CACHE_NODE_TYPE": config.cache.node_type, "CACHE_ENGINE": config.cache.engine,
        "CACHE_REPLICAS": str(config.cache.replicas), "LOOKBACK_DAYS": str(config.rightsizing.lookback_days),
    }  # fmt: skip
    assert variables["OPS_TOPIC_ARN"]["Ref"].startswith("MonitoringAlarmTopic")  # the ops topic, not kill switches


def test_it_judges_the_cache_the_stateful_stack_published(synthesis: Any, environment: str) -> None:
    template = synthesis.template(environment, "service")
    group = Capture()
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": HANDLER, "Environment": {"Variables": Match.object_like({"CACHE_GROUP_ID": group})}},
    )
    stateful = synthesis.template(environment)
    assert published(synthesis, environment, captured(group)) == {
        "Ref": only_id(stateful, "AWS::ElastiCache::ReplicationGroup")
    }


def test_the_role_may_read_metrics_publish_to_the_ops_topic_and_write_its_logs_only(service_template: Template) -> None:
    statements = role_statements(service_template, function_id(service_template, HANDLER))
    actions = sorted(a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))

    assert actions == sorted(["cloudwatch:GetMetricData", "sns:Publish", "kms:Decrypt", "kms:GenerateDataKey*",
                              "logs:CreateLogStream", "logs:PutLogEvents"])  # fmt: skip
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == ["cloudwatch:GetMetricData"]
    publish = next(s for s in statements if s["Action"] == "sns:Publish")
    assert publish["Resource"]["Ref"].startswith("MonitoringAlarmTopic")


def test_the_schedule_comes_from_cdk_json_and_invokes_the_function(
    service_template: Template, config: EnvironmentConfig
) -> None:
    function = function_id(service_template, HANDLER)
    service_template.has_resource_properties(
        "AWS::Scheduler::Schedule",
        {
            "ScheduleExpression": config.rightsizing.schedule,
            "State": "ENABLED",
            "Target": Match.object_like({"Arn": {"Fn::GetAtt": [function, "Arn"]}}),
        },
    )


def test_a_failed_run_alarms_to_the_ops_topic(service_template: Template, config: EnvironmentConfig) -> None:
    function = function_id(service_template, HANDLER)
    service_template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"flagservice-{config.name}-RightsizingErrors",
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function}}],
            "Threshold": 1,
            "ActionsEnabled": config.alarms.actions_enabled,
            "AlarmActions": [{"Ref": Match.string_like_regexp("^MonitoringAlarmTopic")}],
            "OKActions": [{"Ref": Match.string_like_regexp("^MonitoringAlarmTopic")}],
        },
    )


def test_the_schedule_is_quarterly_unless_cdk_json_says_otherwise() -> None:
    document = read_cdk_json()
    for environment in document["context"]["flagservice:environments"].values():
        environment.pop("rightsizing", None)

    defaults = parse_environments(document)

    assert {c.rightsizing for c in defaults.values()} == {RightsizingConfig()}
    assert RightsizingConfig().schedule == "cron(0 8 1 1,4,7,10 ? *)" and RightsizingConfig().lookback_days == 90


@pytest.mark.parametrize(
    "bad",
    [{"schedule": "every quarter"}, {"schedule": "cron(0 8 1 * ?)"}, {"schedule": "rate(1 quarter)"},
     {"lookbackDays": 7}, {"lookbackDays": 500}, {"x": 1}],
)  # fmt: skip
def test_a_wrong_rightsizing_setting_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RightsizingConfig.model_validate(bad)


@pytest.mark.parametrize("good", ["cron(0 8 1 1,4,7,10 ? *)", "cron(30 6 ? * MON *)", "rate(7 days)", "rate(1 day)"])
def test_scheduler_expressions_are_accepted(good: str) -> None:
    assert RightsizingConfig.model_validate({"schedule": good}).schedule == good


def test_the_price_table_travels_in_the_bundle() -> None:
    bundled = {path.as_posix() for path in runtime_files()}

    assert {"flagservice/rightsizing/prices.json", "flagservice/rightsizing/handler.py"} <= bundled
