"""The service stack of one environment: function, canary, API, monitoring and operators.

It holds nothing that is hard to replace, so it is redeployed with every release; everything stateful
comes from the environment's StatefulStack. All wiring and grants between the units are here.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from stacks.constructs.api import STAGE_NAME, FlagApi
from stacks.constructs.canary import CanaryDeployment
from stacks.constructs.database_proxy import FlagDatabaseProxy
from stacks.constructs.flag_function import SERVICE_NAME, FlagFunction, flag_settings, metrics_namespace
from stacks.constructs.monitoring import MonitoredResources, Monitoring
from stacks.constructs.operators import FlagOperators
from stacks.cost_tags import apply_cost_tags
from stacks.stateful_stack import StatefulStack

# `cdk deploy -c flagservice:canaryAcceptDegraded=true`: let a fix through while a store is down.
ACCEPT_DEGRADED_CONTEXT = "flagservice:canaryAcceptDegraded"


def cache_node_ids(stateful: StatefulStack) -> list[str]:
    """ElastiCache names a replication group's nodes `<group id>-001`, `-002`, ... (CloudWatch dimensions)."""
    group_id = stateful.cache.replication_group.ref
    return [f"{group_id}-{index:03d}" for index in range(1, 2 + stateful.config.cache.replicas)]


class ServiceStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stateful: StatefulStack, **kwargs: object) -> None:
        config = stateful.config
        super().__init__(
            scope,
            construct_id,
            description=f"Feature flags ({config.name}): function, canary, API, monitoring",
            termination_protection=config.termination_protection,
            tags=config.cost_tags,
            **kwargs,  # type: ignore[arg-type]
        )
        self.config = config
        common = {"log_retention": config.log_retention, "removal_policy": config.resource_removal_policy}
        database_secret = stateful.database_secret
        self.proxy = None
        if config.function.rds_proxy:
            self.proxy = FlagDatabaseProxy(
                self,
                "DatabaseProxy",
                instance=stateful.database.instance,
                database_secret=database_secret,
                database_security_group_id=stateful.network.database_security_group.security_group_id,
                client_security_group=stateful.function_security_group,
                vpc=stateful.vpc,
            )
            database_secret = self.proxy.client_secret
        settings = flag_settings(
            config,
            redis_url=stateful.redis_url,
            redis_auth_secret_arn=stateful.redis_auth_secret.secret_arn,
            database_secret_arn=database_secret.secret_arn,
        )
        self.flags = FlagFunction(
            self,
            "FlagFunction",
            config=config,
            environment=settings,
            vpc=stateful.vpc,
            security_group=stateful.function_security_group,
        )
        stateful.redis_auth_secret.grant_read(self.flags.function)
        database_secret.grant_read(self.flags.function)
        self.canary = CanaryDeployment(
            self,
            "Canary",
            function=self.flags.function,
            alias=self.flags.alias,
            version=self.flags.version,
            duration_p95_max_ms=config.alarms.canary_duration_p95_max_ms,
            accept_degraded=str(self.node.try_get_context(ACCEPT_DEGRADED_CONTEXT)).lower() == "true",
            **common,
        )
        self.api = FlagApi(
            self, "Api", environment_name=config.name, alias=self.flags.alias, config=config.api, **common
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            resources=MonitoredResources(
                namespace=metrics_namespace(config.name),
                service_name=SERVICE_NAME,
                function_name=self.flags.function.function_name,
                function_log_group=self.flags.log_group,
                api_name=self.api.api.rest_api_name,
                api_stage=STAGE_NAME,
                cache_node_ids=cache_node_ids(stateful),
                database_instance_id=stateful.database.instance.instance_identifier,
            ),
        )
        self.operators = FlagOperators(
            self,
            "Operators",
            environment_name=config.name,
            admin_invoke_arn=self.api.admin_invoke_arn(),
            api_logical_id=self.api.logical_id,
            reader_key_id=self.api.api_key.key_id,
        )
        self._outputs()
        apply_cost_tags(self, config.cost_tags)

    def _outputs(self) -> None:
        """What runbooks and flagctl need, by name (docs/operations.md)."""
        outputs = {
            "ApiUrl": (self.api.api.url, "Base URL of the flag API (flagctl --url)"),
            "ReadersApiKeyId": (self.api.api_key.key_id, "aws apigateway get-api-key --include-value --api-key ID"),
            "OperatorPolicyArn": (self.operators.policy.managed_policy_arn, "Attach to the flag operators"),
            "AlarmTopicArn": (self.monitoring.alarm_topic.topic_arn, "Subscribe on-call to the alarms"),
            "FunctionName": (self.flags.function.function_name, "The flag function"),
            "DeploymentGroupName": (self.canary.deployment_group.deployment_group_name, "CodeDeploy canary"),
        }
        if self.monitoring.kill_switch_topic is not None:
            outputs["KillSwitchTopicArn"] = (self.monitoring.kill_switch_topic.topic_arn, "Every kill-switch write")
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)
