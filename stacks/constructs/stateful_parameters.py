"""The hand-over between the two stacks of an environment: SSM parameters, not CloudFormation exports.

`StatefulParameters` (stateful stack) writes what the service stack needs; `StatefulReferences`
(service stack) reads the same names. An export that another stack imports cannot change, so replacing
the cache (or the database) would fail with "export in use"; a parameter just takes the new value, and
the next service deployment picks it up.

The service stack reads them as CloudFormation parameters of type `AWS::SSM::Parameter::Value<String>`:
CloudFormation resolves them on every deployment of the service stack (and the CDK CLI always deploys a
stack that has such parameters, even when its template did not change). Resolving at deploy time, not
at run time, is deliberate: the function runs in isolated subnets, where reading SSM would need an SSM
interface endpoint (about $7.30 a month per AZ) and a call on every cold start, for values that change
only when the stateful stack replaces something, which is followed by a service deployment anyway.
"""

from __future__ import annotations

from collections.abc import Callable

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import CacheConfig
from stacks.constructs.network import AZ_COUNT, DATABASE_PORT
from stacks.naming import parameter_name

VPC_ID = "network/vpc-id"
ISOLATED_SUBNET_IDS = "network/isolated-subnet-ids"  # comma-separated, in AZ order
FUNCTION_SECURITY_GROUP = "network/function-security-group-id"
DATABASE_SECURITY_GROUP = "network/database-security-group-id"
CACHE_SECURITY_GROUP = "network/cache-security-group-id"  # read by a move's cache stack (cache_stack.py)
CACHE_ENDPOINT = "cache/endpoint"  # the active generation's primary endpoint address
CACHE_NAME = "cache/name"  # its replication group id: IAM tokens are signed for it
CACHE_IAM_USER = "cache/iam-user"
DATABASE_HOST = "database/host"
DATABASE_INSTANCE = "database/instance-id"
DATABASE_SECRET_ARN = "database/secret-arn"  # RDS's own secret of the master user (rotated by RDS)
# The active cache's endpoint and name, when the stateful stack holds it (a cache of its own stack
# publishes its own: cache_stack.py).
CACHE_KEYS = (CACHE_ENDPOINT, CACHE_NAME)
KEYS = (
    VPC_ID,
    ISOLATED_SUBNET_IDS,
    FUNCTION_SECURITY_GROUP,
    DATABASE_SECURITY_GROUP,
    CACHE_SECURITY_GROUP,
    CACHE_ENDPOINT,
    CACHE_NAME,
    CACHE_IAM_USER,
    DATABASE_HOST,
    DATABASE_INSTANCE,
    DATABASE_SECRET_ARN,
)


def _reader(key: str) -> str:
    return "a cache move's cache stack" if key == CACHE_SECURITY_GROUP else "the service stack"


SERVICE_KEYS = tuple(key for key in KEYS if key != CACHE_SECURITY_GROUP)  # what the service stack reads


def cache_parameter_keys(cache: CacheConfig) -> tuple[str, str]:
    """The keys of a cache generation's endpoint and name: the stateful stack's, or its own stack's."""
    if cache.own_stack:
        return f"cache/{cache.generation}/endpoint", f"cache/{cache.generation}/name"
    return CACHE_ENDPOINT, CACHE_NAME


def isolated_vpc(scope: Construct, value: Callable[[str], str]) -> ec2.IVpc:
    """The environment's VPC and isolated subnets, from the stateful stack's parameters (`value` reads one)."""
    subnet_ids = cdk.Fn.split(",", value(ISOLATED_SUBNET_IDS), AZ_COUNT)
    azs = cdk.Fn.get_azs()
    vpc = ec2.Vpc.from_vpc_attributes(
        scope,
        "Vpc",
        vpc_id=value(VPC_ID),
        availability_zones=[cdk.Fn.select(i, azs) for i in range(AZ_COUNT)],
        isolated_subnet_ids=subnet_ids,  # Fn::Select of each element of the split list
    )
    # Nothing here needs the subnets' route tables (no routes are added): silence CDK's warning about them.
    for subnet in vpc.isolated_subnets:
        cdk.Annotations.of(subnet).acknowledge_warning(
            "@aws-cdk/aws-ec2:noSubnetRouteTableId", "the service adds no routes to the isolated subnets"
        )
    return vpc


class StatefulParameters(Construct):
    """One String parameter per key of KEYS, under `/flagservice/<env>/` (CACHE_KEYS only with a cache)."""

    def __init__(self, scope: Construct, construct_id: str, *, environment: str, values: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        if set(values) not in (set(KEYS), set(KEYS) - set(CACHE_KEYS)):
            raise ValueError(f"the stateful stack must publish exactly {', '.join(KEYS)}")
        self.parameters = {
            key: ssm.StringParameter(
                self,
                key.replace("/", "-"),
                parameter_name=parameter_name(environment, key),
                string_value=values[key],
                description=f"Feature flags ({environment}): {key}, read by {_reader(key)} on deploy",
            )
            for key in KEYS
            if key in values
        }


class StatefulReferences(Construct):
    """The stateful stack's parameters, as the service stack's constructs take them."""

    def __init__(
        self, scope: Construct, construct_id: str, *, environment: str, cache_keys: tuple[str, str] = CACHE_KEYS
    ) -> None:
        super().__init__(scope, construct_id)
        self._environment = environment
        self.vpc = isolated_vpc(self, self.value)
        self.function_security_group = ec2.SecurityGroup.from_security_group_id(
            self, "FunctionSecurityGroup", self.value(FUNCTION_SECURITY_GROUP), mutable=False
        )
        self.database_security_group_id = self.value(DATABASE_SECURITY_GROUP)
        self.cache_endpoint, self.cache_name = (self.value(key) for key in cache_keys)
        self.cache_iam_user = self.value(CACHE_IAM_USER)
        self.database_host = self.value(DATABASE_HOST)
        self.database_instance_id = self.value(DATABASE_INSTANCE)
        self.database = rds.DatabaseInstance.from_database_instance_attributes(
            self,
            "Database",
            instance_identifier=self.database_instance_id,
            instance_endpoint_address=self.database_host,
            port=DATABASE_PORT,
            security_groups=[],
        )
        self.database_secret = secretsmanager.Secret.from_secret_complete_arn(
            self, "DatabaseSecret", self.value(DATABASE_SECRET_ARN)
        )

    def value(self, key: str) -> str:
        return ssm.StringParameter.value_for_string_parameter(self, parameter_name(self._environment, key))
