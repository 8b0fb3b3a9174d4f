"""The service stack of one environment: function, canary, API, monitoring and operators.

It holds nothing that is hard to replace, so it is redeployed with every release (the console's Cognito
user pool holds people, not flags: retained with deletion protection where the data is retained). What it needs from the
environment's stateful stack it reads from SSM parameters at deploy time (stateful_parameters.py), never
from exports, so that stack stays free to replace its cache or database. All wiring and grants between
the units are here.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.cache_move import CacheInUse, cache_settings
from stacks.config import EnvironmentConfig
from stacks.constructs.api import FlagApi
from stacks.constructs.cache import CacheNodes
from stacks.constructs.canary import CanaryDeployment
from stacks.constructs.console_sign_in import ConsoleSignIn
from stacks.constructs.database import postgres_engine
from stacks.constructs.database_proxy import FlagDatabaseProxy
from stacks.constructs.flag_function import FlagFunction, flag_settings
from stacks.constructs.monitoring import Monitoring
from stacks.constructs.operators import FlagOperators
from stacks.constructs.push_channel import PushChannel
from stacks.constructs.rightsizing import CacheRightsizing
from stacks.constructs.stateful_parameters import StatefulReferences, cache_parameter_keys
from stacks.environment_stack import EnvironmentStack
from stacks.naming import SERVICE_NAME, cache_group_id, cache_iam_user_id, metrics_namespace

# `cdk deploy -c flagservice:canaryAcceptDegraded=true`: let a fix through while a store is down.
ACCEPT_DEGRADED_CONTEXT = "flagservice:canaryAcceptDegraded"


class ServiceStack(EnvironmentStack):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, config=config, holds="function, canary, API, monitoring", **kwargs)
        self.stateful = StatefulReferences(
            self, "Stateful", environment=config.name, cache_keys=cache_parameter_keys(config.cache)
        )
        current = CacheInUse(self.stateful.cache_endpoint, self.stateful.cache_name, config.cache)
        self.caches = cache_settings(config, current, self.stateful.value)  # a cache move's phase (cache_move.py)
        self.proxy = self._proxy() if config.function.rds_proxy else None
        self.flags = FlagFunction(
            self,
            "FlagFunction",
            config=config,
            environment=self._settings(),
            version_description=cdk.Fn.join(
                " ", ["cache", self.caches.primary.name, "database", self.stateful.database_instance_id]
            ),
            vpc=self.stateful.vpc,
            security_group=self.stateful.function_security_group,
        )
        self.stateful.database_secret.grant_read(self.flags.function)
        self._allow_cache_sign_in()
        self.canary = CanaryDeployment(
            self,
            "Canary",
            function=self.flags.function,
            alias=self.flags.alias,
            version=self.flags.version,
            namespace=metrics_namespace(config.name),
            service_name=SERVICE_NAME,
            duration_p95_max_ms=config.alarms.canary_duration_p95_max_ms,
            accept_degraded=str(self.node.try_get_context(ACCEPT_DEGRADED_CONTEXT)).lower() == "true",
            **self.lifecycle,
        )
        self.api = FlagApi(
            self, "Api", environment_name=config.name, alias=self.flags.alias, config=config.api, **self.lifecycle
        )
        self.console_sign_in = ConsoleSignIn(
            self,
            "ConsoleSignIn",
            environment_name=config.name,
            api=self.api.api,
            removal_policy=config.resource_removal_policy,
        )
        for name, value in self.console_sign_in.settings().items():
            self.flags.function.add_environment(name, value)
        self.push = PushChannel(
            self,
            "PushChannel",
            environment_name=config.name,
            flag_function=self.flags.function,
            log_retention=config.log_retention,
            removal_policy=config.resource_removal_policy,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            function=self.flags,
            api=self.api,
            cache=CacheNodes.of(self.caches.reads.name, self.caches.reads.config),
            database=self.stateful.database,
            more_alarms=self.push.alarm_specs(),
        )
        self.operators = FlagOperators(
            self,
            "Operators",
            environment_name=config.name,
            admin_invoke_arn=self.api.admin_invoke_arn(),
            api_logical_id=self.api.logical_id,
            reader_key_id=self.api.api_key.key_id,
        )
        self.rightsizing = CacheRightsizing(
            self,
            "Rightsizing",
            environment_name=config.name,
            cache=config.cache,
            cache_group_id=self.stateful.cache_name,
            settings=config.rightsizing,
            topic=self.monitoring.alarm_topic,
            alarm_actions_enabled=config.alarms.actions_enabled,
            **self.lifecycle,
        )
        self._outputs()

    def _proxy(self) -> FlagDatabaseProxy:
        return FlagDatabaseProxy(
            self,
            "DatabaseProxy",
            instance_identifier=self.stateful.database_instance_id,
            instance_endpoint_address=self.stateful.database_host,
            engine=postgres_engine(self.config.database.postgres_version),
            database_secret=self.stateful.database_secret,
            database_security_group_id=self.stateful.database_security_group_id,
            client_security_group=self.stateful.function_security_group,
            vpc=self.stateful.vpc,
        )

    def _settings(self) -> dict[str, str]:
        settings = flag_settings(
            self.config,
            cache_endpoint=self.caches.primary.endpoint,
            cache_name=self.caches.primary.name,
            cache_iam_user=self.stateful.cache_iam_user,
            database_host=self.proxy.endpoint if self.proxy else self.stateful.database_host,
            database_secret_arn=self.stateful.database_secret.secret_arn,
        )
        return settings | self.caches.environment

    def _allow_cache_sign_in(self) -> None:
        """`elasticache:Connect` as the IAM user, to the active cache and the one being replaced or moved to (if any).

        The previous generation stays allowed while cdk.json keeps it: the version still taking traffic
        during the canary signs in to it with this same role. During a move (cache_move.py), both.
        """
        stack = cdk.Stack.of(self)
        arn = cdk.ArnFormat.COLON_RESOURCE_NAME
        groups = [cache_group_id(self.config.name, cache.generation) for cache in self.config.caches]
        resources = [
            stack.format_arn(service="elasticache", resource="replicationgroup", resource_name=group, arn_format=arn)
            for group in groups
        ]
        user = cache_iam_user_id(self.config.name)
        resources.append(stack.format_arn(service="elasticache", resource="user", resource_name=user, arn_format=arn))
        self.flags.function.add_to_role_policy(
            iam.PolicyStatement(actions=["elasticache:Connect"], resources=resources)
        )

    def _outputs(self) -> None:
        """What runbooks and flagctl need, by name (docs/operations.md)."""
        outputs = {
            "ApiUrl": (self.api.api.url, "Base URL of the flag API (flagctl --url)"),
            "ReadersApiKeyId": (self.api.api_key.key_id, "aws apigateway get-api-key --include-value --api-key ID"),
            "OperatorPolicyArn": (self.operators.policy.managed_policy_arn, "Attach to the flag operators"),
            "AlarmTopicArn": (self.monitoring.alarm_topic.topic_arn, "Subscribe on-call to the alarms"),
            "ConsoleUrl": (self.console_sign_in.console_url, "The web console (people sign in through Cognito)"),
            "ConsoleUserPoolId": (self.console_sign_in.user_pool.user_pool_id, "Console users: docs/operations.md"),
            "ConsoleEditorsRoleName": (
                self.console_sign_in.editors_role.role_name,
                "Cut off live console credentials at once: docs/operations.md, console users",
            ),
            "FunctionName": (self.flags.function.function_name, "The flag function"),
            "RightsizingFunctionName": (self.rightsizing.function.function_name, "flagctl rightsize --env ..."),
            "DeploymentGroupName": (self.canary.deployment_group.deployment_group_name, "CodeDeploy canary"),
            "DeploymentApplicationName": (
                self.canary.deployment_group.application.application_name,
                "CodeDeploy application (aws deploy list-deployments)",
            ),
            # Where the function runs, for shells that must reach the stores (docs/operations.md, restore).
            "VpcId": (self.stateful.vpc.vpc_id, "The environment's VPC (from the stateful stack's parameters)"),
            "DatabaseSecurityGroupId": (self.stateful.database_security_group_id, "The database's security group"),
            "PushPublishFailuresQueueUrl": (self.push.failures.queue_url, "Changes the publisher failed to send"),
        }
        if self.monitoring.kill_switch_topic is not None:
            outputs["KillSwitchTopicArn"] = (self.monitoring.kill_switch_topic.topic_arn, "Every kill-switch write")
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)
