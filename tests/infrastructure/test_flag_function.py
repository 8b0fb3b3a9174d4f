"""The flag function: Lambda defaults, settings that the runtime's Settings model knows, grants, alias."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from flagservice.settings import Settings
from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis, only_resource, published, resources_of_type

FLAG_HANDLER = "flagservice.handler.lambda_handler"
# Variables Powertools reads itself (docs.powertools.aws.dev, "Environment variables"); nothing else may be set.
POWERTOOLS_VARIABLES = frozenset(
    {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_METRICS_FUNCTION_NAME",
        "POWERTOOLS_METRICS_DISABLED",
        "POWERTOOLS_TRACE_DISABLED",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
        "POWERTOOLS_TRACER_CAPTURE_ERROR",
        "POWERTOOLS_LOGGER_LOG_EVENT",
        "POWERTOOLS_LOGGER_SAMPLE_RATE",
        "POWERTOOLS_LOG_DEDUPLICATION_DISABLED",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_DEV",
        "LOG_LEVEL",
    }
)
LOCAL_ONLY = {"DATABASE_URL", "ADMIN_TOKEN"}


def flag_function(template_json: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [
        (key, value)
        for key, value in resources_of_type(template_json, "AWS::Lambda::Function").items()
        if value["Properties"].get("Handler") == FLAG_HANDLER
    ]
    assert len(found) == 1
    return found[0]


def variables(template_json: dict[str, Any]) -> dict[str, Any]:
    _, function = flag_function(template_json)
    found: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return found


def test_every_environment_variable_is_a_settings_field_or_a_powertools_variable(
    service_template_json: dict[str, Any],
) -> None:
    names = set(variables(service_template_json))

    assert names - set(Settings.model_fields) - POWERTOOLS_VARIABLES == set()
    assert names & LOCAL_ONLY == set()


def test_the_function_gets_the_deployed_settings_and_the_environment_config(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    env = variables(service_template_json)

    assert {"REDIS_URL", "REDIS_IAM_USER", "REDIS_CACHE_NAME", "DB_SECRET_ARN", "DB_HOST", "FLAGS_ENV"} <= set(env)
    assert "REDIS_AUTH_SECRET_ARN" not in env  # IAM authentication: no cache secret at all
    assert (env["DB_PORT"], env["DB_NAME"], env["DB_USER"]) == ("5432", "flags", "flags_admin")
    assert env["FLAGS_ENV"] == config.name
    assert env["CACHE_TTL_SECONDS"] == str(config.function.cache_ttl_seconds)
    assert env["STALE_MAX_AGE_SECONDS"] == str(config.function.stale_max_age_seconds)
    assert env["NEGATIVE_TTL_SECONDS"] == str(config.function.negative_ttl_seconds)
    assert env["L1_MAX_AGE_MS"] == str(config.function.l1_max_age_ms)
    assert env["REDIS_MAX_CONNECTIONS"] == str(config.function.redis_max_connections)
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == f"FeatureFlags/{config.name}"
    assert env["POWERTOOLS_SERVICE_NAME"] == "flagservice"
    assert "DB_PREPARED_STATEMENTS" not in env  # true by default; only RDS Proxy turns it off


def test_the_settings_the_stack_sets_validate_against_the_settings_model(
    service_template_json: dict[str, Any],
) -> None:
    plain = {k: v for k, v in variables(service_template_json).items() if isinstance(v, str)}
    tokens = {
        "REDIS_URL": "rediss://cache.example:6379",
        "REDIS_IAM_USER": "flags-dev-service",
        "REDIS_CACHE_NAME": "flags-dev-cache-1",
        "DB_SECRET_ARN": "arn:secret",
        "DB_HOST": "db.example",
    }

    settings = Settings.model_validate({**plain, **tokens})

    assert settings.DATABASE_URL is None and settings.ADMIN_TOKEN is None


def test_redis_url_is_tls_to_the_active_cache_primary_endpoint(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any]
) -> None:
    prefix, host, port = variables(service_template_json)["REDIS_URL"]["Fn::Join"][1]
    group_id, _ = only_resource(synthesis.template_json(environment), "AWS::ElastiCache::ReplicationGroup")

    assert (prefix, port) == ("rediss://", ":6379")
    assert published(synthesis, environment, host) == {"Fn::GetAtt": [group_id, "PrimaryEndPoint.Address"]}


def test_the_function_signs_in_to_the_cache_as_its_iam_user_and_to_the_database_with_rds_secret(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any]
) -> None:
    env = variables(service_template_json)
    stateful = synthesis.template_json(environment)
    group_id, _ = only_resource(stateful, "AWS::ElastiCache::ReplicationGroup")
    instance_id, _ = only_resource(stateful, "AWS::RDS::DBInstance")
    users = resources_of_type(stateful, "AWS::ElastiCache::User")
    (iam_user,) = [key for key, user in users.items() if user["Properties"]["AuthenticationMode"]["Type"] == "iam"]

    assert published(synthesis, environment, env["REDIS_IAM_USER"]) == {"Ref": iam_user}
    assert published(synthesis, environment, env["REDIS_CACHE_NAME"]) == {"Ref": group_id}
    assert published(synthesis, environment, env["DB_SECRET_ARN"]) == {
        "Fn::GetAtt": [instance_id, "MasterUserSecret.SecretArn"]
    }
    assert published(synthesis, environment, env["DB_HOST"]) == {"Fn::GetAtt": [instance_id, "Endpoint.Address"]}


def test_the_function_shares_the_lambda_defaults_and_the_environment_sizes(
    service_template: Template, config: EnvironmentConfig
) -> None:
    service_template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": FLAG_HANDLER,
            "Runtime": "python3.12",
            "Architectures": ["arm64"],
            "MemorySize": config.function.memory_mb,
            "Timeout": config.function.timeout_seconds,
            "ReservedConcurrentExecutions": config.function.reserved_concurrency,
            "VpcConfig": Match.object_like({"SubnetIds": Match.any_value(), "SecurityGroupIds": Match.any_value()}),
        },
    )


def test_the_function_runs_in_the_isolated_subnets_with_the_function_security_group(
    synthesis: Synthesis, environment: str, service_template_json: dict[str, Any]
) -> None:
    _, function = flag_function(service_template_json)
    vpc_config = function["Properties"]["VpcConfig"]
    stateful = synthesis.template_json(environment)
    subnets = resources_of_type(stateful, "AWS::EC2::Subnet")

    (group,) = vpc_config["SecurityGroupIds"]
    function_group = published(synthesis, environment, group)["Fn::GetAtt"][0]
    selected = [subnet["Fn::Select"] for subnet in vpc_config["SubnetIds"]]
    (list_ref,) = {json.dumps(split["Fn::Split"][1]) for _, split in selected}
    separator, joined = published(synthesis, environment, json.loads(list_ref))["Fn::Join"]

    assert [index for index, _ in selected] == list(range(len(subnets)))
    assert separator == "," and sorted(ref["Ref"] for ref in joined) == sorted(subnets)
    assert stateful["Resources"][function_group]["Properties"]["GroupDescription"].startswith("Flag function")


def test_the_function_reads_only_the_database_secret_and_signs_in_to_its_caches_as_its_user(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    _, function = flag_function(service_template_json)
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = {
        json.dumps(statement["Action"]): statement
        for policy in resources_of_type(service_template_json, "AWS::IAM::Policy").values()
        if {"Ref": role} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    }
    env = variables(service_template_json)
    read = statements['["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"]']
    connect = statements['"elasticache:Connect"']
    names = [part["Fn::Join"][1][-1] for part in connect["Resource"]]

    assert len(statements) == 2
    assert read["Resource"] == env["DB_SECRET_ARN"]
    assert names == [f":replicationgroup:flags-{config.name}-cache-1", f":user:flags-{config.name}-service"]


def test_the_live_alias_points_at_the_published_version(service_template_json: dict[str, Any]) -> None:
    _, alias = only_resource(service_template_json, "AWS::Lambda::Alias")
    function_id, _ = flag_function(service_template_json)
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    version = service_template_json["Resources"][version_id]

    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionName"] == {"Ref": function_id}
    assert version["Type"] == "AWS::Lambda::Version"
    assert version["Properties"]["FunctionName"] == {"Ref": function_id}
    assert version["DeletionPolicy"] == "Retain"  # a later release replaces it; rollbacks can still use it


def test_the_function_logs_to_its_own_group_with_the_environment_retention(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    _, function = flag_function(service_template_json)
    group = service_template_json["Resources"][function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]]

    assert group["Properties"]["RetentionInDays"] == config.log_retention_days
