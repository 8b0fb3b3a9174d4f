"""A cache generation in a stack of its own, as a blue/green move builds it (docs/operations.md).

`FlagsCache-<env>-<generation>` exists only while cdk.json names it (a move's next cache, or an active
cache that a move built). It joins the environment's network through the stateful stack's SSM
parameters (VPC, isolated subnets, the cache security group, which the function may already reach)
and the environment's cache user group by its fixed id, and publishes its own endpoint and name as
SSM parameters (`/flagservice/<env>/cache/<generation>/endpoint` and `/name`): no export joins it to
any stack, so it can be deleted on its own once the move is over.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import CacheConfig, EnvironmentConfig
from stacks.constructs import stateful_parameters as keys
from stacks.constructs.cache import FlagCache
from stacks.environment_stack import EnvironmentStack
from stacks.naming import cache_user_group_id, parameter_name


def cache_stack_id(environment: str, generation: int) -> str:
    return f"FlagsCache-{environment}-{generation}"


class CacheStack(EnvironmentStack):
    """One cache generation (`cache`), beside the stateful stack of its environment."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, cache: CacheConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, config=config, holds=f"cache generation {cache.generation}", **kwargs)
        environment = config.name
        self.generation = cache.generation
        vpc = keys.isolated_vpc(self, self._stateful_value)
        security_group = ec2.SecurityGroup.from_security_group_id(
            self, "CacheSecurityGroup", self._stateful_value(keys.CACHE_SECURITY_GROUP), mutable=False
        )
        self.cache = FlagCache(
            self,
            "Cache",
            environment=environment,
            config=cache,
            user_group=cache_user_group_id(environment),
            vpc=vpc,
            security_group=security_group,
            **self.lifecycle,  # type: ignore[arg-type]
        )
        endpoint_key, name_key = keys.cache_parameter_keys(cache)
        published = {endpoint_key: self.cache.endpoint_address, name_key: self.cache.replication_group.ref}
        self.parameters = {
            key: ssm.StringParameter(
                self,
                key.replace("/", "-"),
                parameter_name=parameter_name(environment, key),
                string_value=value,
                description=f"Feature flags ({environment}): {key}, read by the service stack on deploy",
            )
            for key, value in published.items()
        }

    def _stateful_value(self, key: str) -> str:
        return ssm.StringParameter.value_for_string_parameter(self, parameter_name(self.config.name, key))
