"""The cache right-sizing function (issue 19): scheduled quarterly, invoked on demand by `flagctl rightsize`.

It runs outside the VPC (it never connects to the cache: it reads CloudWatch and publishes to SNS, both
public AWS endpoints), from the one runtime bundle (runtime/flagservice/rightsizing/, price table included).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.bundling import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, runtime_code
from stacks.config import CacheConfig, RightsizingConfig
from stacks.nag import acknowledge, logical_id
from stacks.naming import rightsizing_function_name

HANDLER = "flagservice.rightsizing.handler.lambda_handler"
TIMEOUT = cdk.Duration.minutes(2)  # one GetMetricData request of 42 series x 2,160 hours, a few pages


class CacheRightsizing(Construct):
    """The function, its least-privilege role, its quarterly schedule and an alarm on its errors.

    The role may write its own log group, read metrics (`cloudwatch:GetMetricData`, which IAM cannot scope
    to a resource) and publish to the ops topic (and use that topic's KMS key); nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        cache: CacheConfig,
        cache_group_id: str,
        settings: RightsizingConfig,
        topic: sns.ITopic,
        alarm_actions_enabled: bool,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.role = self._role(topic)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=rightsizing_function_name(environment_name),
            description=f"Cache right-sizing recommendation ({environment_name}): CloudWatch in, ops topic out",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            code=runtime_code(),
            handler=HANDLER,
            role=self.role,
            log_group=self.log_group,
            memory_size=256,
            timeout=TIMEOUT,
            environment={
                "FLAGS_ENV": environment_name,
                "CACHE_GROUP_ID": cache_group_id,
                "CACHE_REPLICAS": str(cache.replicas),
                "CACHE_NODE_TYPE": cache.node_type,
                "CACHE_ENGINE": cache.engine,
                "OPS_TOPIC_ARN": topic.topic_arn,
                "LOOKBACK_DAYS": str(settings.lookback_days),
                "POWERTOOLS_SERVICE_NAME": "flagservice-rightsizing",
                "LOG_LEVEL": "INFO",
                **({"CACHE_SHARDS": str(cache.shards)} if cache.cluster_mode else {}),  # its nodes are named by shard
            },
        )
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="EventBridge Scheduler: invoke the cache right-sizing function",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description=f"Cache right-sizing ({environment_name}), cdk.json rightsizing.schedule",
            schedule=scheduler.ScheduleExpression.expression(settings.schedule),
            target=targets.LambdaInvoke(
                self.function,
                input=scheduler.ScheduleTargetInput.from_object({"source": "schedule"}),
                role=self.scheduler_role,
                retry_attempts=2,
                max_event_age=cdk.Duration.hours(1),
            ),
        )
        self.alarm = self._errors_alarm(environment_name, topic, alarm_actions_enabled)
        self._acknowledge()

    def _role(self, topic: sns.ITopic) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Cache right-sizing: its logs, CloudWatch metrics (read), the ops topic (publish)",
        )
        self.log_group.grant_write(role)
        role.add_to_policy(
            iam.PolicyStatement(sid="CacheMetrics", actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        topic.grant_publish(role)
        return role

    def _errors_alarm(self, environment_name: str, topic: sns.ITopic, actions_enabled: bool) -> cloudwatch.Alarm:
        """Any failed run: a quarter without a recommendation would otherwise pass unnoticed."""
        alarm = cloudwatch.Alarm(
            self,
            "Errors",
            alarm_name=f"flagservice-{environment_name}-RightsizingErrors",
            metric=self.function.metric_errors(period=cdk.Duration.hours(1), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            actions_enabled=actions_enabled,
            alarm_description="The cache right-sizing function failed: no recommendation this time (see its logs)",
        )
        alarm.add_alarm_action(actions.SnsAction(topic))
        alarm.add_ok_action(actions.SnsAction(topic))  # like every alarm of Monitoring: fires and clears
        return alarm

    def _acknowledge(self) -> None:
        policy = self.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:GetMetricData supports no resource-level permissions (IAM service authorization "
            "reference: resource type none), so it needs '*'; the statement allows that one read-only action.",
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "Publishing to the KMS-encrypted ops topic needs a data key from that one key (the statement's "
            "resource); GenerateDataKey* is CDK's grant for SNS publishers.",
        )
        acknowledge(
            self.scheduler_role.node.find_child("DefaultPolicy"),
            f"AwsSolutions-IAM5[Resource::<{logical_id(self.function)}.Arn>:*]",
            "The scheduler may invoke this one function; ':*' covers its versions and aliases (CDK's grant).",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 on purpose: the one runtime bundle is resolved and tested for cp312 "
            "(tests/infrastructure/test_wheels.py), like every function of the service.",
        )
