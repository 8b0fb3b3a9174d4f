"""The flag cache: ElastiCache (Valkey) replication groups, TLS only, signed into with IAM.

No AUTH token and no password to rotate: the function signs in as an ElastiCache user with IAM
authentication, with a token it computes locally (SigV4, valid 15 minutes; runtime
flagservice/adapters/redis_credentials.py). `CacheUsers` holds the users, once per environment;
`FlagCache` is one generation of the cache, so a replacement can be built beside the current one.
"""

from __future__ import annotations

import string

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import CacheConfig
from stacks.constructs.network import CACHE_PORT
from stacks.nag import acknowledge
from stacks.naming import (
    cache_default_user_id,
    cache_group_id,
    cache_iam_user_id,
    cache_user_group_id,
    metrics_namespace,
)

# ElastiCache accepts only these non-alphanumeric characters in a password.
PASSWORD_PUNCTUATION = "!&#$^<>-"
PASSWORD_EXCLUDED = "".join(c for c in string.punctuation if c not in PASSWORD_PUNCTUATION)
SERVICE_ACCESS = "on ~* +@all"  # the cache holds derived data only; ElastiCache blocks admin commands itself
DEFAULT_ACCESS = "off -@all"  # the mandatory `default` user can do nothing, not even sign in
SLOW_COMMANDS_METRIC = "CacheSlowCommands"
NODE_METRIC_PERIOD = cdk.Duration.minutes(5)  # the per-node metrics are read in 5-minute periods, graphs and alarms


class CacheUsers(Construct):
    """The user group every cache generation of an environment uses: an IAM user and an inert default.

    A user group must contain a user named `default`; here it is switched off, and its password (which
    Valkey user groups require of a non-IAM user) is generated into Secrets Manager, never seen.
    """

    def __init__(self, scope: Construct, construct_id: str, *, environment: str, engine: str) -> None:
        super().__init__(scope, construct_id)
        self.default_password = secretsmanager.Secret(
            self,
            "DefaultUserPassword",
            description="Password of the cache's switched-off `default` user (nobody signs in with it)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_characters=PASSWORD_EXCLUDED, require_each_included_type=True
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        default_user = elasticache.CfnUser(
            self,
            "DefaultUser",
            engine=engine,
            user_id=cache_default_user_id(environment),
            user_name="default",
            access_string=DEFAULT_ACCESS,
            authentication_mode={
                "Type": "password",
                "Passwords": [self.default_password.secret_value.unsafe_unwrap()],
            },
        )
        self.service_user = elasticache.CfnUser(
            self,
            "ServiceUser",
            engine=engine,
            user_id=cache_iam_user_id(environment),
            user_name=cache_iam_user_id(environment),  # IAM users: user name = user id
            access_string=SERVICE_ACCESS,
            authentication_mode={"Type": "iam"},
        )
        self.user_group = elasticache.CfnUserGroup(
            self,
            "UserGroup",
            engine=engine,
            user_group_id=cache_user_group_id(environment),
            user_ids=[default_user.ref, self.service_user.ref],
        )
        acknowledge(
            self.default_password,
            "AwsSolutions-SMG4",
            "The password of the cache's `default` user, which is switched off (access string "
            "'off -@all'): nobody can sign in with it, so rotating it would protect nothing. The service "
            "signs in with IAM tokens that expire after 15 minutes.",
        )


class FlagCache(Construct):
    """One cache generation: one shard (cluster mode disabled), a primary plus `replicas`, TLS required;
    or, with `clusterMode`, `shards` node groups of that shape (Redis Cluster, configuration endpoint).

    Its replication group id is fixed (`flags-<env>-cache-<generation>`): IAM tokens are signed for it
    and the service's IAM policy names it. The parameter group logs commands slower than
    `slowlog_microseconds` to CloudWatch Logs, where a metric filter counts them (CacheSlowCommands), and
    sets an explicit volatile-* eviction policy: the global revision key has no TTL and must survive
    memory pressure. Clients connect with `rediss://` to `endpoint_address`:`port`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment: str,
        config: CacheConfig,
        user_group: elasticache.CfnUserGroup | str,  # the group, or its id (from a stack of its own)
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.group_id = cache_group_id(environment, config.generation)
        self.parameter_group = elasticache.CfnParameterGroup(
            self,
            "Parameters",
            cache_parameter_group_family=config.parameter_group_family,
            description="Flag cache: slow log at 10 ms, never evict keys without a TTL"
            + (", cluster mode" if config.cluster_mode else ""),
            properties={
                "maxmemory-policy": config.maxmemory_policy,
                "slowlog-log-slower-than": str(config.slowlog_microseconds),
                # Cluster mode on (the family's `.cluster.on` default group sets the same). ElastiCache's
                # cluster-require-full-coverage stays "no": a dead shard fails only its own slots.
                **({"cluster-enabled": "yes"} if config.cluster_mode else {}),
            },
        )
        subnet_group = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description="Isolated subnets of the flag service",
            subnet_ids=[subnet.subnet_id for subnet in vpc.isolated_subnets],
        )
        self.slow_log_group = logs.LogGroup(self, "SlowLog", retention=log_retention, removal_policy=removal_policy)
        self.slow_commands = self._count_slow_commands(environment)
        self.replication_group = self._replication_group(config, subnet_group, security_group, user_group)
        # Cluster mode: the configuration endpoint (any node answers CLUSTER SLOTS; DNS over all of them).
        group = self.replication_group
        self.endpoint_address = (
            group.attr_configuration_end_point_address if config.cluster_mode else group.attr_primary_end_point_address
        )
        self.port = CACHE_PORT

    def _count_slow_commands(self, environment: str) -> logs.MetricFilter:
        """Every slow log entry (JSON, one per command slower than the threshold) counts 1."""
        return logs.MetricFilter(
            self,
            "SlowCommands",
            log_group=self.slow_log_group,
            filter_pattern=logs.FilterPattern.exists("$.CacheNodeId"),
            metric_namespace=metrics_namespace(environment),
            metric_name=SLOW_COMMANDS_METRIC,
            metric_value="1",
        )

    def _replication_group(
        self,
        config: CacheConfig,
        subnet_group: elasticache.CfnSubnetGroup,
        security_group: ec2.ISecurityGroup,
        user_group: elasticache.CfnUserGroup | str,
    ) -> elasticache.CfnReplicationGroup:
        group = elasticache.CfnReplicationGroup(
            self,
            "ReplicationGroup",
            replication_group_id=self.group_id,
            replication_group_description="Flag cache (derived data: PostgreSQL is the source of truth)",
            engine=config.engine,
            engine_version=config.engine_version,
            cache_node_type=config.node_type,
            **_topology(config),
            multi_az_enabled=config.multi_az,
            port=CACHE_PORT,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            at_rest_encryption_enabled=True,
            user_group_ids=[user_group if isinstance(user_group, str) else user_group.ref],
            cache_parameter_group_name=self.parameter_group.ref,
            cache_subnet_group_name=subnet_group.ref,
            security_group_ids=[security_group.security_group_id],
            snapshot_retention_limit=config.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            log_delivery_configurations=[
                elasticache.CfnReplicationGroup.LogDeliveryConfigurationRequestProperty(
                    destination_type="cloudwatch-logs",
                    destination_details=elasticache.CfnReplicationGroup.DestinationDetailsProperty(
                        cloud_watch_logs_details=elasticache.CfnReplicationGroup.CloudWatchLogsDestinationDetailsProperty(
                            log_group=self.slow_log_group.log_group_name
                        )
                    ),
                    log_format="json",
                    log_type="slow-log",
                )
            ],
        )
        acknowledge(
            group,
            "AwsSolutions-AEC6",
            "Signed into with IAM through an RBAC user group instead of an AUTH token: 15-minute "
            "tokens computed from the function's role, no shared secret; the default user is switched off.",
        )
        if not config.multi_az:
            acknowledge(
                group,
                "AwsSolutions-AEC4",
                "Single node outside prod to halve the cost: the cache holds derived data and the "
                "service serves from PostgreSQL (BYPASS) while it is down.",
            )
        return group


def _topology(config: CacheConfig) -> dict[str, object]:
    """One shard of 1 + replicas nodes, or (cluster mode) `shards` node groups of that size."""
    if config.cluster_mode:
        return {
            "cluster_mode": "enabled",
            "num_node_groups": config.shards,
            "replicas_per_node_group": config.replicas,
            "automatic_failover_enabled": True,  # required in cluster mode
        }
    return {"num_cache_clusters": 1 + config.replicas, "automatic_failover_enabled": config.replicas > 0}


class CacheNodes:
    """The nodes of one replication group as CloudWatch names them, with their metrics.

    ElastiCache publishes per node (`CacheClusterId` = `<group id>-001`, `-002`, ...), and CDK has no
    construct for a replication group with `metric_*()` methods: this stands in for one. The service
    stack knows the group id from the stateful stack's parameters and the node count from cdk.json.
    """

    def __init__(self, *, group_id: str, replicas: int, shards: int | None = None) -> None:
        nodes = range(1, 2 + replicas)
        if shards is None:
            self.node_ids = [f"{group_id}-{index:03d}" for index in nodes]
        else:  # cluster mode: `<group id>-<shard 0001...>-<node 001...>`
            self.node_ids = [f"{group_id}-{shard:04d}-{index:03d}" for shard in range(1, 1 + shards) for index in nodes]

    @classmethod
    def of(cls, group_id: str, config: CacheConfig) -> CacheNodes:
        return cls(group_id=group_id, replicas=config.replicas, shards=config.shards if config.cluster_mode else None)

    def metric_per_node(self, name: str, statistic: str) -> list[cloudwatch.IMetric]:
        """One line per node, for graphs."""
        return [
            self._metric(node, name, statistic, label=f"{name} node {index + 1}")
            for index, node in enumerate(self.node_ids)
        ]

    def metric_worst_node(self, name: str, statistic: str) -> cloudwatch.IMetric:
        """The highest value over the nodes, for alarms (after a failover the primary is another node)."""
        nodes = {f"n{index}": self._metric(node, name, statistic) for index, node in enumerate(self.node_ids)}
        if len(nodes) == 1:
            return next(iter(nodes.values()))
        return cloudwatch.MathExpression(
            expression=f"MAX([{', '.join(nodes)}])", using_metrics=nodes, label=f"{name} (max over nodes)"
        )

    @staticmethod
    def _metric(node: str, name: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/ElastiCache",
            metric_name=name,
            dimensions_map={"CacheClusterId": node},
            statistic=statistic,
            period=NODE_METRIC_PERIOD,
            label=label,
        )
