"""The deployed event stream (issue 17): an AppSync Events API per environment, its publisher and authorizer.

- The Event API has one channel namespace, `flags`: publish with IAM only (the publisher function's role),
  connect and subscribe through the Lambda authorizer, which accepts the short-lived read-only token the
  flag function puts in the advertised URL (runtime/flagservice/push/token.py), for this environment only.
- The publisher function runs outside the VPC: the flag function (in the VPC, no NAT) invokes it
  asynchronously through the Lambda interface endpoint of the environment's network (network.py).
  Failed publishes are retried twice by Lambda, then land in an on-failure queue; its depth and the
  functions' errors are alarm rows (`alarm_specs`).
- The token secret is generated here and read by the flag function (through the existing Secrets Manager
  endpoint) and the authorizer; it is not the admin credential and grants nothing but subscribe.
docs/infrastructure.md explains the choice and its cost; docs/operations.md what the alarms mean.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_appsync as appsync
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.monitoring import AlarmSpec
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.service_metrics import FIVE_MINUTES, MINUTE
from stacks.nag import acknowledge

NAMESPACE = "flags"  # runtime/flagservice/push/publish.py NAMESPACE
PUBLISHER_HANDLER = "flagservice.push.publisher.lambda_handler"
AUTHORIZER_HANDLER = "flagservice.push.authorizer.lambda_handler"
AUTHORIZER_CACHE = cdk.Duration.minutes(5)  # the authorizer's own answer never outlives the token (ttlOverride)
PUBLISH_RETRIES = 2
PUBLISH_MAX_AGE = cdk.Duration.minutes(10)  # older changes are superseded anyway: clients re-fetch on reconnect
AUTHORIZER_ERRORS_PER_MINUTE = 5


class PushChannel(Construct):
    """Per environment: the Event API, the publisher (outside the VPC) with its failure queue, the authorizer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        flag_function: lambda_.Function,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._env = environment_name
        self.token_secret = self._token_secret()
        functions = {"log_retention": log_retention, "removal_policy": removal_policy, "vpc": None}
        self.authorizer = ServiceFunction(
            self, "Authorizer", handler=AUTHORIZER_HANDLER, security_group=None, memory_size=256,
            description=f"Push channel authorizer: subscribe-only tokens ({environment_name})",
            environment={"FLAGS_ENV": environment_name, "PUSH_TOKEN_SECRET_ARN": self.token_secret.secret_arn,
                         "POWERTOOLS_SERVICE_NAME": "flagservice-push-authorizer"},
            timeout=cdk.Duration.seconds(5), **functions,
        ).function  # fmt: skip
        self.token_secret.grant_read(self.authorizer)
        self.api = self._event_api()
        self.failures = self._failure_queue()
        self.publisher = self._publisher(functions)
        self._connect_flag_function(flag_function)

    def _token_secret(self) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self, "TokenSecret", description=f"HMAC key of the push channel's subscribe tokens ({self._env})",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
        )  # fmt: skip
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Tokens signed with it live at most 75 minutes; rotating means replacing it in a deployment (both "
            "readers pick the new value up, browsers re-fetch a fresh URL when a token is refused).",
        )
        return secret

    def _event_api(self) -> appsync.EventApi:
        iam_mode, lambda_mode = appsync.AppSyncAuthorizationType.IAM, appsync.AppSyncAuthorizationType.LAMBDA
        authorizer = appsync.AppSyncLambdaAuthorizerConfig(handler=self.authorizer, results_cache_ttl=AUTHORIZER_CACHE)
        api = appsync.EventApi(
            self, "Api", api_name=f"flagservice-{self._env}-events",
            authorization_config=appsync.EventApiAuthConfig(
                auth_providers=[appsync.AppSyncAuthProvider(authorization_type=iam_mode),
                                appsync.AppSyncAuthProvider(authorization_type=lambda_mode,
                                                            lambda_authorizer_config=authorizer)],
                connection_auth_mode_types=[lambda_mode],
                default_publish_auth_mode_types=[iam_mode],
                default_subscribe_auth_mode_types=[lambda_mode],
            ),
        )  # fmt: skip
        # No AppSync logging: CDK would add a LogRetention function for its group; the publisher's and the
        # authorizer's own logs (their log groups, with the environment's retention) say what happened.
        api.add_channel_namespace("Flags", channel_namespace_name=NAMESPACE)
        return api

    def _failure_queue(self) -> sqs.Queue:
        queue = sqs.Queue(
            self, "PublishFailures", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )  # fmt: skip
        acknowledge(queue, "AwsSolutions-SQS3", "It is itself the publisher's on-failure destination (a DLQ).")
        return queue

    def _publisher(self, functions: dict[str, object]) -> lambda_.Function:
        function = ServiceFunction(
            self, "Publisher", handler=PUBLISHER_HANDLER, security_group=None, memory_size=256,
            description=f"Push channel publisher: one AppSync Events message per change ({self._env})",
            environment={"EVENT_API_PUBLISH_URL": f"https://{self.api.http_dns}/event",
                         "POWERTOOLS_SERVICE_NAME": "flagservice-push-publisher"},
            timeout=cdk.Duration.seconds(15), **functions,  # type: ignore[arg-type]
        ).function  # fmt: skip
        function.configure_async_invoke(
            retry_attempts=PUBLISH_RETRIES,
            max_event_age=PUBLISH_MAX_AGE,
            on_failure=destinations.SqsDestination(self.failures),
        )
        # This namespace only (grant_publish would allow every namespace of the API: channelNamespace/*).
        namespace = f"{self.api.api_arn}/channelNamespace/{NAMESPACE}"
        function.add_to_role_policy(iam.PolicyStatement(actions=["appsync:EventPublish"], resources=[namespace]))
        return function

    def _connect_flag_function(self, flag_function: lambda_.Function) -> None:
        """The flag function's settings and rights (its route to Lambda's API is the network's endpoint)."""
        # The function itself, not `:*` (grant_invoke adds every version and alias; the publisher has none).
        invoke = iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.publisher.function_arn])
        flag_function.add_to_role_policy(invoke)
        self.token_secret.grant_read(flag_function)
        settings = {
            "PUSH_CHANNEL_URL": f"wss://{self.api.realtime_dns}/event/realtime",
            "PUSH_CHANNEL_HOST": self.api.http_dns,
            "PUSH_TOKEN_SECRET_ARN": self.token_secret.secret_arn,
            "PUSH_PUBLISHER_FUNCTION": self.publisher.function_name,
        }
        for name, value in settings.items():
            flag_function.add_environment(name, value)

    def alarm_specs(self) -> tuple[AlarmSpec, ...]:
        """Rows for the monitoring table: a change that was not published, and clients that cannot connect."""
        waiting = self.failures.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum")
        return (
            AlarmSpec("PushPublishFailed", waiting, 0, 1,
                      "A change message failed every publish attempt (publisher's on-failure queue not empty): "
                      "clients see it on their next reconnect or fetch"),
            AlarmSpec("PushPublisherErrors", self.publisher.metric_errors(period=MINUTE), 0, 3,
                      "The push publisher failed every minute for 3 min (Lambda retries; the queue gets the rest)"),
            AlarmSpec("PushAuthorizerErrors", self.authorizer.metric_errors(period=MINUTE),
                      AUTHORIZER_ERRORS_PER_MINUTE, 3,
                      f"More than {AUTHORIZER_ERRORS_PER_MINUTE} authorizer errors a minute for 3 min: "
                      "browsers cannot connect to the push channel"),
        )  # fmt: skip
