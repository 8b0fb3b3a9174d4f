"""The flag function: Lambda defaults, settings that the runtime's Settings model knows, grants, alias."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Capture, Match, Template

from flagservice.settings import Settings
from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import Synthesis, function_id, only_id, published

FLAG_HANDLER = "flagservice.handler.lambda_handler"
FUNCTION = "AWS::Lambda::Function"
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
LOCAL_ONLY = {"DATABASE_URL", "ADMIN_TOKEN", "PUSH_TOKEN_SECRET", "PUSH_PUBLISH_URL"}


def flag_function(template: Template) -> str:
    """The flag function's logical id."""
    return function_id(template, FLAG_HANDLER)


def variables(template: Template) -> dict[str, Any]:
    """The flag function's environment variables."""
    found = Capture()
    template.has_resource_properties(FUNCTION, {"Handler": FLAG_HANDLER, "Environment": {"Variables": found}})
    return dict(found.as_object())


def flag_function_has(template: Template, properties: dict[str, Any]) -> None:
    template.has_resource_properties(FUNCTION, {"Handler": FLAG_HANDLER, **properties})


def test_every_environment_variable_is_a_settings_field_or_a_powertools_variable(service_template: Template) -> None:
    names = set(variables(service_template))

    assert names - set(Settings.model_fields) - POWERTOOLS_VARIABLES == set()
    assert names & LOCAL_ONLY == set()


def test_the_function_gets_the_deployed_settings_and_the_environment_config(
    service_template: Template, config: EnvironmentConfig
) -> None:
    deployed = dict.fromkeys(("REDIS_URL", "REDIS_IAM_USER", "REDIS_CACHE_NAME", "DB_SECRET_ARN", "DB_HOST"))
    function = config.function

    flag_function_has(
        service_template,
        {
            "Environment": {
                "Variables": {
                    **{name: Match.any_value() for name in deployed},
                    "REDIS_AUTH_SECRET_ARN": Match.absent(),  # IAM authentication: no cache secret at all
                    "DB_PORT": "5432",
                    "DB_NAME": "flags",
                    "DB_USER": "flags_admin",
                    "FLAGS_ENV": config.name,
                    "CACHE_TTL_SECONDS": str(function.cache_ttl_seconds),
                    "STALE_MAX_AGE_SECONDS": str(function.stale_max_age_seconds),
                    "NEGATIVE_TTL_SECONDS": str(function.negative_ttl_seconds),
                    "L1_MAX_AGE_MS": str(function.l1_max_age_ms),
                    "REDIS_MAX_CONNECTIONS": str(function.redis_max_connections),
                    "POWERTOOLS_METRICS_NAMESPACE": f"FeatureFlags/{config.name}",
                    "POWERTOOLS_SERVICE_NAME": "flagservice",
                    "DB_PREPARED_STATEMENTS": Match.absent(),  # true by default; only RDS Proxy turns it off
                }
            }
        },
    )


def test_the_settings_the_stack_sets_validate_against_the_settings_model(service_template: Template) -> None:
    plain = {k: v for k, v in variables(service_template).items() if isinstance(v, str)}
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
    synthesis: Synthesis, environment: str, service_template: Template
) -> None:
    host = Capture()
    url = {"Fn::Join": ["", ["rediss://", host, ":6379"]]}
    flag_function_has(service_template, {"Environment": {"Variables": {"REDIS_URL": url}}})
    group = only_id(synthesis.template(environment), "AWS::ElastiCache::ReplicationGroup")

    assert published(synthesis, environment, host.as_object()) == {"Fn::GetAtt": [group, "PrimaryEndPoint.Address"]}


def test_the_function_signs_in_to_the_cache_as_its_iam_user_and_to_the_database_with_rds_secret(
    synthesis: Synthesis, environment: str, service_template: Template
) -> None:
    # Given the function's settings and the stateful stack's cache, database and IAM user
    env = variables(service_template)
    stateful = synthesis.template(environment)
    group_id = only_id(stateful, "AWS::ElastiCache::ReplicationGroup")
    instance_id = only_id(stateful, "AWS::RDS::DBInstance")
    (iam_user,) = stateful.find_resources(
        "AWS::ElastiCache::User", {"Properties": {"AuthenticationMode": {"Type": "iam"}}}
    )

    # Then each setting is what the stateful stack publishes for them

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
    synthesis: Synthesis, environment: str, service_template: Template
) -> None:
    # Given the function's security group and subnets, and the stateful stack's subnets
    group, subnet_ids = Capture(), Capture()
    flag_function_has(service_template, {"VpcConfig": {"SecurityGroupIds": [group], "SubnetIds": subnet_ids}})
    stateful = synthesis.template(environment)
    subnets = stateful.find_resources("AWS::EC2::Subnet")

    # When the references are followed through the published parameters
    function_group = published(synthesis, environment, group.as_object())["Fn::GetAtt"][0]
    selected = [subnet["Fn::Select"] for subnet in subnet_ids.as_array()]
    (list_ref,) = {json.dumps(split["Fn::Split"][1]) for _, split in selected}
    separator, joined = published(synthesis, environment, json.loads(list_ref))["Fn::Join"]

    # Then the function sits in every isolated subnet, in the flag function's security group
    assert [index for index, _ in selected] == list(range(len(subnets)))
    assert separator == "," and sorted(ref["Ref"] for ref in joined) == sorted(subnets)
    flag_group = stateful.find_resources(
        "AWS::EC2::SecurityGroup", {"Properties": {"GroupDescription": Match.string_like_regexp("^Flag function")}}
    )
    assert function_group in flag_group


def test_the_function_reads_only_its_secrets_signs_in_to_its_caches_and_invokes_only_the_publisher(
    service_template: Template, config: EnvironmentConfig
) -> None:
    # Given the flag function's role
    role = Capture()
    flag_function_has(service_template, {"Role": {"Fn::GetAtt": [role, "Arn"]}})

    def arn_ending(name: str) -> dict[str, Any]:
        return {"Fn::Join": ["", Match.array_with([name])]}

    # Then its one policy reads the database secret and the push channel's token key, connects to its cache as
    # its user and invokes the push publisher (issue 17), and nothing else
    secrets = Capture()
    read = {"Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], "Resource": secrets}
    connect = {
        "Action": "elasticache:Connect",
        "Resource": [
            arn_ending(f":replicationgroup:flags-{config.name}-cache-1"),
            arn_ending(f":user:flags-{config.name}-service"),
        ],
    }
    publisher = variables(service_template)["PUSH_PUBLISHER_FUNCTION"]["Ref"]
    invoke = {"Action": "lambda:InvokeFunction", "Resource": {"Fn::GetAtt": [publisher, "Arn"]}}
    service_template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role.as_string()}],
            "PolicyDocument": {"Statement": [Match.object_like(s) for s in (read, connect, invoke)]},
        },
    )
    expected = [variables(service_template)[name] for name in ("DB_SECRET_ARN", "PUSH_TOKEN_SECRET_ARN")]
    assert sorted(map(str, secrets.as_array())) == sorted(map(str, expected))


def test_the_live_alias_points_at_the_published_version(service_template: Template) -> None:
    function = flag_function(service_template)
    version = Capture()
    service_template.resource_count_is("AWS::Lambda::Alias", 1)
    service_template.has_resource_properties(
        "AWS::Lambda::Alias",
        {"Name": "live", "FunctionName": {"Ref": function}, "FunctionVersion": {"Fn::GetAtt": [version, "Version"]}},
    )

    kept_versions = service_template.find_resources(
        "AWS::Lambda::Version",
        # Retained: a later release replaces it; rollbacks can still use it
        {"Properties": {"FunctionName": {"Ref": function}}, "DeletionPolicy": "Retain"},
    )
    assert version.as_string() in kept_versions


def test_the_function_logs_to_its_own_group_with_the_environment_retention(
    service_template: Template, config: EnvironmentConfig
) -> None:
    group = Capture()
    flag_function_has(service_template, {"LoggingConfig": {"LogGroup": {"Ref": group}}})

    kept = service_template.find_resources(
        "AWS::Logs::LogGroup", {"Properties": {"RetentionInDays": config.log_retention_days}}
    )
    assert group.as_string() in kept
