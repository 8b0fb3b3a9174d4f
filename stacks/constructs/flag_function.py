"""The flag function: the service's one Lambda handler, its settings, and the alias that takes traffic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.database import DATABASE_NAME, MASTER_USERNAME
from stacks.constructs.network import CACHE_PORT, DATABASE_PORT
from stacks.constructs.service_function import ServiceFunction
from stacks.naming import SERVICE_NAME, metrics_namespace

FLAG_HANDLER = "flagservice.handler.lambda_handler"
ALIAS_NAME = "live"
__all__ = ["SERVICE_NAME", "FlagFunction", "flag_settings", "metrics_namespace"]


def flag_settings(
    config: EnvironmentConfig,
    *,
    cache_endpoint: str,
    cache_name: str,
    cache_iam_user: str,
    database_host: str,
    database_secret_arn: str,
) -> dict[str, str]:
    """The function's environment: fields of the runtime's `Settings` model plus Powertools' variables.

    The cache is reached over TLS and signed into with IAM (REDIS_IAM_USER, REDIS_CACHE_NAME); the
    database's address is here and its password in RDS's managed secret. tests/infrastructure/
    test_flag_function.py compares every name with `flagservice.settings.Settings`. Which cache (and its
    cluster mode, REDIS_CLUSTER_MODE) comes from stacks/cache_move.py, merged over these. Tracing stays off:
    the isolated VPC has no X-Ray endpoint (docs/operations.md).
    """
    function = config.function
    settings = {
        "FLAGS_ENV": config.name,
        "REDIS_URL": f"rediss://{cache_endpoint}:{CACHE_PORT}",
        "REDIS_IAM_USER": cache_iam_user,
        "REDIS_CACHE_NAME": cache_name,
        "DB_SECRET_ARN": database_secret_arn,
        "DB_HOST": database_host,
        "DB_PORT": str(DATABASE_PORT),
        "DB_NAME": DATABASE_NAME,
        "DB_USER": MASTER_USERNAME,
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
    alias moves to it through the CodeDeploy canary (canary.py), never directly. `version_description`
    names what the settings read from SSM at deploy time: CDK cannot see those values when it decides
    whether the version changed, but CloudFormation replaces a version whose description changed, so a
    new cache or database publishes a new version, which goes through the canary like any release.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        environment: dict[str, str],
        version_description: str,
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
            version_description=version_description,
        )
        self.function: lambda_.Function = self.service_function.function
        self.log_group: logs.ILogGroup = self.service_function.log_group
        self.version = self.function.current_version
        self.alias = lambda_.Alias(self, "Live", alias_name=ALIAS_NAME, version=self.version)
