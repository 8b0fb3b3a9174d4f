"""The canary: CodeDeploy moves the `live` alias, checked by a pre-traffic hook and alarms, and rolls back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

import app as app_module
from stacks.config import EnvironmentConfig, load_environments
from stacks.service_stack import ACCEPT_DEGRADED_CONTEXT
from tests.infrastructure.conftest import Synthesis, only_resource, resources_of_type
from tests.infrastructure.test_flag_function import flag_function

HOOK_HANDLER = "canary_hook.handler"


def hook(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [
        (key, value)
        for key, value in resources_of_type(template_json, "AWS::Lambda::Function").items()
        if value["Properties"].get("Handler") == HOOK_HANDLER
    ]
    assert len(found) == 1
    return found[0]


def role_statements(template_json: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in resources_of_type(template_json, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def alarm_by_ref(template_json: dict[str, Any], ref: dict[str, str]) -> dict[str, Any]:
    alarm: dict[str, Any] = template_json["Resources"][ref["Ref"]]
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    return alarm


def test_the_deployment_group_shifts_10_percent_for_5_minutes(service_template: Template) -> None:
    service_template.has_resource_properties(
        "AWS::CodeDeploy::DeploymentGroup",
        {
            "DeploymentConfigName": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "DeploymentStyle": {"DeploymentOption": "WITH_TRAFFIC_CONTROL", "DeploymentType": "BLUE_GREEN"},
        },
    )


def test_failures_stops_and_alarms_roll_the_alias_back(service_template: Template) -> None:
    service_template.has_resource_properties(
        "AWS::CodeDeploy::DeploymentGroup",
        {
            "AutoRollbackConfiguration": {
                "Enabled": True,
                "Events": Match.array_equals(
                    ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST", "DEPLOYMENT_STOP_ON_ALARM"]
                ),
            },
            "AlarmConfiguration": Match.object_like({"Enabled": True}),
        },
    )


def test_the_alias_update_goes_through_codedeploy_with_the_hook_before_traffic(
    service_template_json: dict[str, Any],
) -> None:
    _, alias = only_resource(service_template_json, "AWS::Lambda::Alias")
    group_id, _ = only_resource(service_template_json, "AWS::CodeDeploy::DeploymentGroup")
    hook_id, _ = hook(service_template_json)
    policy = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]

    assert policy["DeploymentGroupName"] == {"Ref": group_id}
    assert policy["BeforeAllowTrafficHook"] == {"Ref": hook_id}


def rollback_alarms(template_json: dict[str, Any]) -> list[dict[str, Any]]:
    _, group = only_resource(template_json, "AWS::CodeDeploy::DeploymentGroup")
    return [
        alarm_by_ref(template_json, a["Name"])["Properties"]
        for a in group["Properties"]["AlarmConfiguration"]["Alarms"]
    ]


def test_every_rollback_alarm_watches_the_new_version_alone_never_the_alias(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    """An incident in the version being replaced must not block the fix: no alias-wide alarm here."""
    _, alias = only_resource(service_template_json, "AWS::Lambda::Alias")
    new_version = alias["Properties"]["FunctionVersion"]  # GetAtt <Version>.Version, what the alias moves to
    watched = {}
    for alarm in rollback_alarms(service_template_json):
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        version_dimension = "FunctionVersion" if alarm["Namespace"].startswith("FeatureFlags/") else "ExecutedVersion"
        assert dimensions[version_dimension] == new_version, alarm
        watched[(alarm["Namespace"], alarm["MetricName"], alarm.get("Statistic") or alarm.get("ExtendedStatistic"))] = (
            alarm
        )

    assert set(watched) == {
        (f"FeatureFlags/{config.name}", "ServerErrorAnswers", "Sum"),
        ("AWS/Lambda", "Errors", "Sum"),
        ("AWS/Lambda", "Duration", "p95"),
    }
    assert watched[(f"FeatureFlags/{config.name}", "ServerErrorAnswers", "Sum")]["Threshold"] == 1
    assert watched[("AWS/Lambda", "Errors", "Sum")]["Threshold"] == 1
    assert watched[("AWS/Lambda", "Duration", "p95")]["Threshold"] == config.alarms.canary_duration_p95_max_ms
    assert all(
        a["Period"] == 60 and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" for a in watched.values()
    )


def test_the_hook_runs_outside_the_vpc_on_its_own_small_asset(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any]
) -> None:
    _, function = hook(service_template_json)
    manifest = synthesis.read_json(f"{synthesis.services[environment].artifact_id}.assets.json")
    key = function["Properties"]["Code"]["S3Key"]
    (asset,) = [a for a in manifest["files"].values() if any(d["objectKey"] == key for d in a["destinations"].values())]
    folder = synthesis.outdir / asset["source"]["path"]

    assert "VpcConfig" not in function["Properties"]
    assert sorted(p.name for p in folder.iterdir()) == ["canary_hook.py"]
    assert function["Properties"]["Runtime"].startswith("python3.")
    assert function["Properties"]["Environment"]["Variables"]["ACCEPT_DEGRADED"] == "false"


def test_the_hook_may_invoke_the_flag_function_versions_and_read_and_report_its_own_deployments(
    service_template_json: dict[str, Any],
) -> None:
    _, function = hook(service_template_json)
    flag_id, _ = flag_function(service_template_json)
    group_id, _ = only_resource(service_template_json, "AWS::CodeDeploy::DeploymentGroup")
    application_id, _ = only_resource(service_template_json, "AWS::CodeDeploy::Application")
    statements = {json.dumps(s["Action"]): s for s in role_statements(service_template_json, function)}

    invoke = statements['"lambda:InvokeFunction"']["Resource"]["Fn::Join"][1]
    assert invoke == [{"Fn::GetAtt": [flag_id, "Arn"]}, ":*"]  # its versions: the one targeted may be older
    report = statements['["codedeploy:GetDeployment", "codedeploy:PutLifecycleEventHookExecutionStatus"]']
    assert {"Ref": group_id} in report["Resource"]["Fn::Join"][1]
    revision = statements['"codedeploy:GetApplicationRevision"']["Resource"]["Fn::Join"][1]
    assert revision[-2:] == [":application:", {"Ref": application_id}]
    assert "logs:PutLogEvents" in statements['["logs:CreateLogStream", "logs:PutLogEvents"]']["Action"]
    assert len(statements) == 4
    assert (
        "ManagedPolicyArns"
        not in service_template_json["Resources"][function["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
    )


def test_the_stack_tells_the_hook_the_version_it_publishes(service_template_json: dict[str, Any]) -> None:
    _, function = hook(service_template_json)
    _, alias = only_resource(service_template_json, "AWS::Lambda::Alias")

    assert (
        function["Properties"]["Environment"]["Variables"]["TARGET_VERSION"] == alias["Properties"]["FunctionVersion"]
    )


def test_a_deploy_context_lets_a_degraded_version_through(tmp_path: Path) -> None:
    app = app_module.create_app(str(tmp_path))
    app.node.set_context(ACCEPT_DEGRADED_CONTEXT, "true")  # as `cdk deploy -c ...=true` sets it
    app.node.set_context("aws:cdk:bundling-stacks", [])

    stacks = app_module.build_environment(app, load_environments()["dev"], None)
    template = Template.from_stack(stacks.service, skip_cyclical_dependencies_check=True)

    assert stacks.service.canary.accept_degraded is True
    # A 503 then means the store that is down, not the release: only the other 5xx roll back.
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "InternalErrorAnswers", "Namespace": "FeatureFlags/dev"}
    )
    metrics = [a["Properties"].get("MetricName") for a in template.find_resources("AWS::CloudWatch::Alarm").values()]
    assert "ServerErrorAnswers" not in metrics


def test_the_hook_tests_the_flag_function(service_template_json: dict[str, Any]) -> None:
    _, function = hook(service_template_json)
    flag_id, _ = flag_function(service_template_json)

    assert function["Properties"]["Environment"]["Variables"]["TARGET_FUNCTION_NAME"] == {"Ref": flag_id}
