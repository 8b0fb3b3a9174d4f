"""The stateful stack of one environment: network, cache, database and the migrations that shape it.

Data that is hard to replace lives here, apart from the service stack (issue 5), so the service can be
redeployed often without touching it. The attributes below are what the service stack consumes.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import EnvironmentConfig
from stacks.constructs.cache import FlagCache
from stacks.constructs.database import FlagDatabase
from stacks.constructs.migration import DatabaseMigration
from stacks.constructs.network import Network
from stacks.cost_tags import apply_cost_tags


class StatefulStack(cdk.Stack):
    """Composes the units and wires the one grant between them (the migration reads the DB secret)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Feature flags ({config.name}): network, cache, database, migrations",
            termination_protection=config.termination_protection,
            tags=config.cost_tags,
            **kwargs,  # type: ignore[arg-type]
        )
        self.config = config
        common = {"log_retention": config.log_retention, "removal_policy": config.resource_removal_policy}
        self.network = Network(
            self,
            "Network",
            cidr=config.network.vpc_cidr,
            endpoint_az_count=config.network.endpoint_az_count,
            **common,
        )
        self.cache = FlagCache(
            self,
            "Cache",
            config=config.cache,
            vpc=self.network.vpc,
            security_group=self.network.cache_security_group,
            **common,
        )
        self.database = FlagDatabase(
            self,
            "Database",
            config=config.database,
            vpc=self.network.vpc,
            security_group=self.network.database_security_group,
            removal_policy=config.data_removal_policy,
        )
        self.migration = DatabaseMigration(
            self,
            "Migration",
            environment_name=config.name,
            database_secret_arn=self.database.secret.secret_arn,
            vpc=self.network.vpc,
            security_group=self.network.migration_security_group,
            run_after=[self.network, self.database],
            **common,
        )
        self.database.secret.grant_read(self.migration.function.function)
        apply_cost_tags(self, config.cost_tags)

    # What the service stack (issue 5) needs, as typed attributes.
    @property
    def vpc(self) -> ec2.IVpc:
        return self.network.vpc

    @property
    def function_security_group(self) -> ec2.ISecurityGroup:
        return self.network.function_security_group

    @property
    def redis_endpoint(self) -> str:
        return self.cache.endpoint_address

    @property
    def redis_port(self) -> int:
        return self.cache.port

    @property
    def redis_url(self) -> str:
        """REDIS_URL for the flag function: TLS is required by the cache."""
        return f"rediss://{self.cache.endpoint_address}:{self.cache.port}"

    @property
    def redis_auth_secret(self) -> secretsmanager.ISecret:
        return self.cache.auth_token

    @property
    def database_secret(self) -> secretsmanager.ISecret:
        return self.database.secret
