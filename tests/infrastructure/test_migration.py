"""Migrations run in the VPC, invoked by the deployment from outside it, after the database exists."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template

from stacks.config import EnvironmentConfig
from stacks.constructs.service_function import ServiceFunction
from tests.infrastructure.conftest import only_resource, resources_of_type

MIGRATION_HANDLER = "flagservice.migrate_function.lambda_handler"


def _migration_function(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [
        (key, value)
        for key, value in resources_of_type(template_json, "AWS::Lambda::Function").items()
        if value["Properties"].get("Handler") == MIGRATION_HANDLER
    ]
    assert len(found) == 1
    return found[0]


def _security_group_of(template_json: dict[str, Any], function: dict[str, Any]) -> str:
    (group,) = function["Properties"]["VpcConfig"]["SecurityGroupIds"]
    logical_id: str = group["Fn::GetAtt"][0]
    return logical_id


def test_the_migration_function_shares_the_lambda_defaults(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": MIGRATION_HANDLER, "Runtime": "python3.12", "Architectures": ["arm64"], "Timeout": 300},
    )


def test_the_migration_function_runs_in_the_isolated_subnets(template_json: dict[str, Any]) -> None:
    _, function = _migration_function(template_json)
    subnets = set(resources_of_type(template_json, "AWS::EC2::Subnet"))

    assert {ref["Ref"] for ref in function["Properties"]["VpcConfig"]["SubnetIds"]} == subnets


def test_the_migration_function_logs_with_the_environment_retention(
    template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    _, function = _migration_function(template_json)
    log_group = template_json["Resources"][function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]

    assert log_group["Properties"]["RetentionInDays"] == config.log_retention_days


def test_the_migration_function_reads_only_the_database_secret(template_json: dict[str, Any]) -> None:
    _, function = _migration_function(template_json)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        policy
        for policy in resources_of_type(template_json, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    (statement,) = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    instance_id, _ = only_resource(template_json, "AWS::RDS::DBInstance")
    managed_secret = {"Fn::GetAtt": [instance_id, "MasterUserSecret.SecretArn"]}
    variables = function["Properties"]["Environment"]["Variables"]

    assert variables["DB_SECRET_ARN"] == managed_secret
    assert "secretsmanager:GetSecretValue" in statement["Action"]
    assert statement["Resource"] == managed_secret
    # RDS's managed secret holds only username and password: the address comes with the function.
    assert variables["DB_HOST"] == {"Fn::GetAtt": [instance_id, "Endpoint.Address"]}
    assert (variables["DB_PORT"], variables["DB_NAME"], variables["DB_USER"]) == ("5432", "flags", "flags_admin")


def test_no_deployed_function_gets_a_local_only_setting(template_json: dict[str, Any]) -> None:
    for function in resources_of_type(template_json, "AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not {"DATABASE_URL", "ADMIN_TOKEN"} & set(variables)


def test_the_migration_security_group_may_reach_the_database(template_json: dict[str, Any]) -> None:
    _, function = _migration_function(template_json)
    migration_group = _security_group_of(template_json, function)
    _, instance = only_resource(template_json, "AWS::RDS::DBInstance")
    (database_group,) = [g["Fn::GetAtt"][0] for g in instance["Properties"]["VPCSecurityGroups"]]

    ingress = resources_of_type(template_json, "AWS::EC2::SecurityGroupIngress").values()
    assert any(
        rule["Properties"]["GroupId"] == {"Fn::GetAtt": [database_group, "GroupId"]}
        and rule["Properties"]["SourceSecurityGroupId"] == {"Fn::GetAtt": [migration_group, "GroupId"]}
        and rule["Properties"]["FromPort"] == 5432
        for rule in ingress
    )


def test_a_trigger_invokes_the_current_version_synchronously(template_json: dict[str, Any]) -> None:
    _, trigger = only_resource(template_json, "Custom::Trigger")
    _, function = _migration_function(template_json)
    version_id = trigger["Properties"]["HandlerArn"]["Ref"]

    assert trigger["Properties"]["InvocationType"] == "RequestResponse"  # a raised error fails the deploy
    assert trigger["Properties"]["ExecuteOnHandlerChange"] is True  # new code, new migrations, new run
    assert template_json["Resources"][version_id]["Type"] == "AWS::Lambda::Version"
    assert int(trigger["Properties"]["Timeout"]) >= function["Properties"]["Timeout"] * 1000


def test_the_trigger_runs_after_the_database_and_the_secrets_endpoint(template_json: dict[str, Any]) -> None:
    _, trigger = only_resource(template_json, "Custom::Trigger")
    instance_id, _ = only_resource(template_json, "AWS::RDS::DBInstance")
    endpoint_id, _ = only_resource(template_json, "AWS::EC2::VPCEndpoint")

    assert {instance_id, endpoint_id} <= set(trigger["DependsOn"])


def test_the_trigger_provider_runs_outside_the_vpc(template_json: dict[str, Any]) -> None:
    _, trigger = only_resource(template_json, "Custom::Trigger")
    provider_id = trigger["Properties"]["ServiceToken"]["Fn::GetAtt"][0]

    assert "VpcConfig" not in template_json["Resources"][provider_id]["Properties"]


@pytest.mark.parametrize("setting", ["DATABASE_URL", "ADMIN_TOKEN"])
def test_the_lambda_defaults_refuse_local_only_settings(setting: str) -> None:
    stack = cdk.Stack(cdk.App())
    vpc = ec2.Vpc(stack, "Vpc", nat_gateways=0)

    with pytest.raises(ValueError, match=setting):
        ServiceFunction(
            stack,
            "Function",
            handler="flagservice.handler.lambda_handler",
            description="test",
            environment={setting: "x"},
            vpc=vpc,
            security_group=ec2.SecurityGroup(stack, "Group", vpc=vpc),
            log_retention=logs.RetentionDays.ONE_DAY,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
