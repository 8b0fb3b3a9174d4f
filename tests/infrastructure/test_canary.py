"""The canary: CodeDeploy moves the `live` alias, checked by a pre-traffic hook and alarms, and rolls back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk.assertions import Capture, Match, Template

import app as app_module
from stacks.config import EnvironmentConfig, load_environments
from stacks.service_stack import ACCEPT_DEGRADED_CONTEXT
from tests.infrastructure.conftest import Synthesis, function_id, only_id
from tests.infrastructure.test_flag_function import FLAG_HANDLER

HOOK_HANDLER = "canary_hook.handler"
GROUP = "AWS::CodeDeploy::DeploymentGroup"
ALARM = "AWS::CloudWatch::Alarm"


def hook_has(template: Template, properties: dict[str, Any]) -> None:
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": HOOK_HANDLER, **properties})


def new_version(template: Template) -> Any:
    """What the alias moves to: the version this deployment publishes (`Fn::GetAtt <Version>.Version`)."""
    version = Capture()
    template.resource_count_is("AWS::Lambda::Alias", 1)
    template.has_resource_properties("AWS::Lambda::Alias", {"FunctionVersion": version})
    return version.as_object()


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


def test_the_alias_update_goes_through_codedeploy_with_the_hook_before_traffic(service_template: Template) -> None:
    group = only_id(service_template, GROUP)
    hook = function_id(service_template, HOOK_HANDLER)

    update = {"DeploymentGroupName": {"Ref": group}, "BeforeAllowTrafficHook": {"Ref": hook}}

    service_template.resource_count_is("AWS::Lambda::Alias", 1)
    service_template.has_resource("AWS::Lambda::Alias", {"UpdatePolicy": {"CodeDeployLambdaAliasUpdate": update}})


def test_every_rollback_alarm_watches_the_new_version_alone_never_the_alias(
    service_template: Template, config: EnvironmentConfig
) -> None:
    """An incident in the version being replaced must not block the fix: no alias-wide alarm here."""
    # Given the alarms the deployment group rolls back on, and the version it deploys
    rollback = Capture()
    service_template.has_resource_properties(GROUP, {"AlarmConfiguration": {"Alarms": rollback}})
    version = new_version(service_template)

    # When the alarms on that version alone are looked up
    def on_the_new_version(dimension: str, alarm: dict[str, Any]) -> set[str]:
        watched = {"Dimensions": Match.array_with([{"Name": dimension, "Value": version}])}
        common = {"Period": 60, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
        return set(service_template.find_resources(ALARM, {"Properties": {**common, **watched, **alarm}}))

    ours = {"Namespace": f"FeatureFlags/{config.name}", "MetricName": "ServerErrorAnswers", "Statistic": "Sum"}
    errors = {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Statistic": "Sum"}
    duration = {"Namespace": "AWS/Lambda", "MetricName": "Duration", "ExtendedStatistic": "p95"}
    found = [
        on_the_new_version("FunctionVersion", {**ours, "Threshold": 1}),
        on_the_new_version("ExecutedVersion", {**errors, "Threshold": 1}),
        on_the_new_version("ExecutedVersion", {**duration, "Threshold": config.alarms.canary_duration_p95_max_ms}),
    ]

    # Then there is one of each, and they are exactly the rollback alarms
    assert [len(alarms) for alarms in found] == [1, 1, 1]
    assert {alarm["Name"]["Ref"] for alarm in rollback.as_array()} == set().union(*found)


def test_the_hook_runs_outside_the_vpc_on_its_own_small_asset(
    synthesis: Synthesis, environment: str, service_template: Template
) -> None:
    # Given the hook, outside the VPC, and the key of its code
    key = Capture()
    hook_has(
        service_template,
        {
            "VpcConfig": Match.absent(),
            "Runtime": Match.string_like_regexp(r"^python3\."),
            "Environment": {"Variables": {"ACCEPT_DEGRADED": "false"}},
            "Code": {"S3Key": key},
        },
    )

    # When the asset with that key is found in the assembly
    manifest = synthesis.read_json(f"{synthesis.services[environment].artifact_id}.assets.json")
    (asset,) = [
        a
        for a in manifest["files"].values()
        if any(d["objectKey"] == key.as_string() for d in a["destinations"].values())
    ]

    # Then it holds the hook's module and nothing else
    assert sorted(p.name for p in (synthesis.outdir / asset["source"]["path"]).iterdir()) == ["canary_hook.py"]


def test_the_hook_may_invoke_the_flag_function_versions_and_read_and_report_its_own_deployments(
    service_template: Template,
) -> None:
    # Given the hook's role, the flag function and the deployment group with its application
    role = Capture()
    hook_has(service_template, {"Role": {"Fn::GetAtt": [role, "Arn"]}})
    flag = function_id(service_template, FLAG_HANDLER)
    group = only_id(service_template, GROUP)
    application = only_id(service_template, "AWS::CodeDeploy::Application")

    # Then its one policy holds four statements: logs, invoke (any version: the one targeted may be older),
    # read and report its deployments, read the application's revisions; and it has no managed policy
    def allows(action: Any, resource: Any = None) -> Any:
        return Match.object_like({"Action": action, **({"Resource": resource} if resource else {})})

    statements = [
        allows(["logs:CreateLogStream", "logs:PutLogEvents"]),
        allows("lambda:InvokeFunction", {"Fn::Join": ["", [{"Fn::GetAtt": [flag, "Arn"]}, ":*"]]}),
        allows(
            ["codedeploy:GetDeployment", "codedeploy:PutLifecycleEventHookExecutionStatus"],
            {"Fn::Join": ["", Match.array_with([{"Ref": group}])]},
        ),
        allows(
            "codedeploy:GetApplicationRevision",
            {"Fn::Join": ["", Match.array_with([":application:", {"Ref": application}])]},
        ),
    ]
    service_template.resource_properties_count_is("AWS::IAM::Policy", {"Roles": [{"Ref": role.as_string()}]}, 1)
    service_template.has_resource_properties(
        "AWS::IAM::Policy", {"Roles": [{"Ref": role.as_string()}], "PolicyDocument": {"Statement": statements}}
    )
    unmanaged = service_template.find_resources("AWS::IAM::Role", {"Properties": {"ManagedPolicyArns": Match.absent()}})
    assert role.as_string() in unmanaged


def test_the_stack_tells_the_hook_the_version_it_publishes(service_template: Template) -> None:
    hook_has(service_template, {"Environment": {"Variables": {"TARGET_VERSION": new_version(service_template)}}})


def test_a_deploy_context_lets_a_degraded_version_through(tmp_path: Path) -> None:
    # Given the deploy context that accepts a degraded version
    app = app_module.create_app(str(tmp_path))
    app.node.set_context(ACCEPT_DEGRADED_CONTEXT, "true")  # as `cdk deploy -c ...=true` sets it
    app.node.set_context("aws:cdk:bundling-stacks", [])

    # When dev's service stack is built with it
    stacks = app_module.build_environment(app, load_environments()["dev"], None)
    template = Template.from_stack(stacks.service, skip_cyclical_dependencies_check=True)

    # Then the canary's 5xx alarm reads the non-503 answers only
    assert stacks.service.canary.accept_degraded is True
    # A 503 then means the store that is down, not the release: only the other 5xx roll back.
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "InternalErrorAnswers", "Namespace": "FeatureFlags/dev"}
    )
    template.resource_properties_count_is("AWS::CloudWatch::Alarm", {"MetricName": "ServerErrorAnswers"}, 0)


def test_the_hook_tests_the_flag_function(service_template: Template) -> None:
    flag = function_id(service_template, FLAG_HANDLER)

    hook_has(service_template, {"Environment": {"Variables": {"TARGET_FUNCTION_NAME": {"Ref": flag}}}})
