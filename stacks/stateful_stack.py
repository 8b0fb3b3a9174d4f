"""The stateful stack of one environment: network, cache, database and the migrations that shape it.

Data that is hard to replace lives here, apart from the service stack, so the service can be redeployed
often without touching it. What the service stack needs is published as SSM parameters
(stateful_parameters.py), never as exports, so the cache or the database can be replaced.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.config import CacheConfig, EnvironmentConfig
from stacks.constructs import stateful_parameters as keys
from stacks.constructs.cache import CacheUsers, FlagCache
from stacks.constructs.database import DATABASE_NAME, MASTER_USERNAME, FlagDatabase
from stacks.constructs.migration import DatabaseMigration
from stacks.constructs.network import DATABASE_PORT, Network
from stacks.constructs.stateful_parameters import StatefulParameters
from stacks.environment_stack import EnvironmentStack


def cache_construct_id(generation: int) -> str:
    """Generation 1 keeps the id the cache always had; a replacement gets its own."""
    return "Cache" if generation == 1 else f"Cache{generation}"


class StatefulStack(EnvironmentStack):
    """Composes the units and wires the one grant between them (the migration reads the DB secret)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, config=config, holds="network, cache, database, migrations", **kwargs)
        self.network = Network(
            self,
            "Network",
            cidr=config.network.vpc_cidr,
            endpoint_az_count=config.network.endpoint_az_count,
            **self.lifecycle,
        )
        self.cache_users = CacheUsers(self, "CacheUsers", environment=config.name, engine=config.cache.engine)
        # A cache of its own stack (a blue/green move's: cache_stack.py) is not built here.
        self.caches = [self._cache(cache_config) for cache_config in config.caches if not cache_config.own_stack]
        self.cache = None if config.cache.own_stack else self.caches[0]  # the active generation, if it is here
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
            database_address=self.database_address,
            vpc=self.network.vpc,
            security_group=self.network.migration_security_group,
            run_after=[self.network, self.database],
            **self.lifecycle,
        )
        self.database.secret.grant_read(self.migration.function.function)
        self.parameters = StatefulParameters(self, "Parameters", environment=config.name, values=self._published())

    def _cache(self, cache_config: CacheConfig) -> FlagCache:
        return FlagCache(
            self,
            cache_construct_id(cache_config.generation),
            environment=self.config.name,
            config=cache_config,
            user_group=self.cache_users.user_group,
            vpc=self.network.vpc,
            security_group=self.network.cache_security_group,
            **self.lifecycle,  # type: ignore[arg-type]
        )

    @property
    def database_address(self) -> dict[str, str]:
        """DB_HOST, DB_PORT, DB_NAME and DB_USER: RDS's managed secret holds only username and password."""
        return {
            "DB_HOST": self.database.endpoint_address,
            "DB_PORT": str(DATABASE_PORT),
            "DB_NAME": DATABASE_NAME,
            "DB_USER": MASTER_USERNAME,
        }

    def _published(self) -> dict[str, str]:
        """The values of the SSM parameters the service stack reads (stateful_parameters.KEYS)."""
        network = self.network
        return {
            keys.VPC_ID: network.vpc.vpc_id,
            keys.ISOLATED_SUBNET_IDS: cdk.Fn.join(",", [subnet.subnet_id for subnet in network.vpc.isolated_subnets]),
            keys.FUNCTION_SECURITY_GROUP: network.function_security_group.security_group_id,
            keys.DATABASE_SECURITY_GROUP: network.database_security_group.security_group_id,
            keys.CACHE_SECURITY_GROUP: network.cache_security_group.security_group_id,
            **self._published_cache(),
            keys.CACHE_IAM_USER: self.cache_users.service_user.ref,
            keys.DATABASE_HOST: self.database.endpoint_address,
            keys.DATABASE_INSTANCE: self.database.instance.instance_identifier,
            keys.DATABASE_SECRET_ARN: self.database.secret.secret_arn,
        }

    def _published_cache(self) -> dict[str, str]:
        if self.cache is None:
            return {}
        return {keys.CACHE_ENDPOINT: self.cache.endpoint_address, keys.CACHE_NAME: self.cache.replication_group.ref}
