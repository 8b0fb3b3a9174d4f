"""Migrations run in the VPC, invoked by the deployment from outside it, after the database exists."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Capture, Match, Template

from stacks.config import EnvironmentConfig
from stacks.constructs.service_function import ServiceFunction
from tests.infrastructure.conftest import only_id

MIGRATION_HANDLER = "flagservice.migrate_function.lambda_handler"


def migration_has(template: Template, properties: dict[str, Any]) -> None:
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": MIGRATION_HANDLER, **properties})


def test_the_migration_function_shares_the_lambda_defaults(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": MIGRATION_HANDLER, "Runtime": "python3.12", "Architectures": ["arm64"], "Timeout": 300},
    )


def test_the_migration_function_runs_in_the_isolated_subnets(template: Template) -> None:
    subnets = Capture()
    migration_has(template, {"VpcConfig": {"SubnetIds": subnets}})

    assert {ref["Ref"] for ref in subnets.as_array()} == set(template.find_resources("AWS::EC2::Subnet"))


def test_the_migration_function_logs_with_the_environment_retention(
    template: Template, config: EnvironmentConfig
) -> None:
    group = Capture()
    migration_has(template, {"LoggingConfig": {"LogGroup": {"Ref": group}}})

    retention = {"Properties": {"RetentionInDays": config.log_retention_days}}
    assert group.as_string() in template.find_resources("AWS::Logs::LogGroup", retention)


def test_the_migration_function_reads_only_the_database_secret(template: Template) -> None:
    # Given the database instance, whose RDS-managed secret holds only username and password
    instance = only_id(template, "AWS::RDS::DBInstance")
    managed_secret = {"Fn::GetAtt": [instance, "MasterUserSecret.SecretArn"]}

    # Then the function gets the secret and the address, and may read that secret alone
    role = Capture()
    migration_has(
        template,
        {
            "Role": {"Fn::GetAtt": [role, "Arn"]},
            "Environment": {
                "Variables": {
                    "DB_SECRET_ARN": managed_secret,
                    "DB_HOST": {"Fn::GetAtt": [instance, "Endpoint.Address"]},
                    "DB_PORT": "5432",
                    "DB_NAME": "flags",
                    "DB_USER": "flags_admin",
                }
            },
        },
    )
    reads_the_secret = {"Action": Match.array_with(["secretsmanager:GetSecretValue"]), "Resource": managed_secret}
    of_the_role = {"Roles": Match.array_with([{"Ref": role.as_string()}])}
    template.resource_properties_count_is("AWS::IAM::Policy", of_the_role, 1)
    template.has_resource_properties(
        "AWS::IAM::Policy", {**of_the_role, "PolicyDocument": {"Statement": [Match.object_like(reads_the_secret)]}}
    )


def test_no_deployed_function_gets_a_local_only_setting(template: Template) -> None:
    local_only = {"Environment": {"Variables": {"DATABASE_URL": Match.absent(), "ADMIN_TOKEN": Match.absent()}}}
    without_settings = template.find_resources("AWS::Lambda::Function", {"Properties": {"Environment": Match.absent()}})
    with_settings = template.find_resources("AWS::Lambda::Function", {"Properties": local_only})

    assert set(without_settings) | set(with_settings) == set(template.find_resources("AWS::Lambda::Function"))


def test_the_migration_security_group_may_reach_the_database(template: Template) -> None:
    # Given the migration function's security group and the database's
    migration_group, database_group = Capture(), Capture()
    migration_has(template, {"VpcConfig": {"SecurityGroupIds": [{"Fn::GetAtt": [migration_group, "GroupId"]}]}})
    template.has_resource_properties(
        "AWS::RDS::DBInstance", {"VPCSecurityGroups": [{"Fn::GetAtt": [database_group, "GroupId"]}]}
    )

    # Then the database's group lets the migration's in on PostgreSQL's port
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "GroupId": {"Fn::GetAtt": [database_group.as_string(), "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [migration_group.as_string(), "GroupId"]},
            "FromPort": 5432,
        },
    )


def test_a_trigger_invokes_the_current_version_synchronously(template: Template) -> None:
    # Given the migration function's timeout
    timeout = Capture()
    migration_has(template, {"Timeout": timeout})

    # When the trigger's version and timeout are read
    version, trigger_timeout = Capture(), Capture()
    template.resource_count_is("Custom::Trigger", 1)
    template.has_resource_properties(
        "Custom::Trigger",
        {
            "InvocationType": "RequestResponse",  # a raised error fails the deploy
            "ExecuteOnHandlerChange": True,  # new code, new migrations, new run
            "HandlerArn": {"Ref": version},
            "Timeout": trigger_timeout,
        },
    )

    # Then it invokes a published version and waits at least as long as the function may run
    assert version.as_string() in template.find_resources("AWS::Lambda::Version")
    assert int(trigger_timeout.as_string()) >= timeout.as_number() * 1000


def test_the_trigger_runs_after_the_database_and_the_secrets_endpoint(template: Template) -> None:
    instance = only_id(template, "AWS::RDS::DBInstance")
    secrets = {"Properties": {"ServiceName": {"Fn::Join": ["", Match.array_with([".secretsmanager"])]}}}
    (endpoint,) = template.find_resources("AWS::EC2::VPCEndpoint", secrets)

    template.resource_count_is("Custom::Trigger", 1)
    template.has_resource("Custom::Trigger", {"DependsOn": Match.array_with(sorted([instance, endpoint]))})


def test_the_trigger_provider_runs_outside_the_vpc(template: Template) -> None:
    provider = Capture()
    template.resource_count_is("Custom::Trigger", 1)
    template.has_resource_properties("Custom::Trigger", {"ServiceToken": {"Fn::GetAtt": [provider, "Arn"]}})

    outside = template.find_resources("AWS::Lambda::Function", {"Properties": {"VpcConfig": Match.absent()}})
    assert provider.as_string() in outside


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
