"""The flag function: the service's one Lambda handler, its settings, and the alias that takes traffic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.service_function import ServiceFunction

FLAG_HANDLER = "flagservice.handler.lambda_handler"
ALIAS_NAME = "live"
SERVICE_NAME = "flagservice"


def metrics_namespace(environment: str) -> str:
    """One CloudWatch namespace per environment, so dashboards and alarms never mix environments."""
    return f"FeatureFlags/{environment}"


def flag_settings(
    config: EnvironmentConfig, *, redis_url: str, redis_auth_secret_arn: str, database_secret_arn: str
) -> dict[str, str]:
    """The function's environment: fields of the runtime's `Settings` model plus Powertools' variables.

    tests/infrastructure/test_flag_function.py compares every name with `flagservice.settings.Settings`.
    Tracing stays off: the isolated VPC has no X-Ray endpoint (docs/operations.md).
    """
    function = config.function
    settings = {
        "FLAGS_ENV": config.name,
        "REDIS_URL": redis_url,
        "REDIS_AUTH_SECRET_ARN": redis_auth_secret_arn,
        "DB_SECRET_ARN": database_secret_arn,
        "CACHE_TTL_SECONDS": str(function.cache_ttl_seconds),
        "STALE_MAX_AGE_SECONDS": str(function.stale_max_age_seconds),
        "NEGATIVE_TTL_SECONDS": str(function.negative_ttl_seconds),
        "L1_MAX_AGE_MS": str(function.l1_max_age_ms),
        "REDIS_MAX_CONNECTIONS": str(function.redis_max_connections),
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace(config.name),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "LOG_LEVEL": "INFO",
    }
    if function.rds_proxy:
        settings["DB_PREPARED_STATEMENTS"] = "false"  # prepared statements pin RDS Proxy sessions
    return settings


class FlagFunction(Construct):
    """The flag handler as a `ServiceFunction` (the shared Lambda defaults) and its `live` alias.

    Every deployment publishes a new version (`current_version` follows code and configuration); the
    alias moves to it through the CodeDeploy canary (canary.py), never directly.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        environment: dict[str, str],
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.service_function = ServiceFunction(
            self,
            "Handler",
            handler=FLAG_HANDLER,
            description=f"Feature flag API ({config.name})",
            environment=environment,
            vpc=vpc,
            security_group=security_group,
            log_retention=config.log_retention,
            removal_policy=config.resource_removal_policy,
            memory_size=config.function.memory_mb,
            timeout=cdk.Duration.seconds(config.function.timeout_seconds),
            reserved_concurrent_executions=config.function.reserved_concurrency,
            keep_old_versions=True,  # `aws lambda update-alias` back to any earlier release (operations.md)
        )
        self.function: lambda_.Function = self.service_function.function
        self.log_group: logs.ILogGroup = self.service_function.log_group
        self.version = self.function.current_version
        self.alias = lambda_.Alias(self, "Live", alias_name=ALIAS_NAME, version=self.version)
