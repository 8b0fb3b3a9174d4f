"""Schema migrations, run by the deployment itself before any new code takes traffic."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import triggers
from constructs import Construct

from stacks.constructs.service_function import ServiceFunction

MIGRATION_HANDLER = "flagservice.migrate_function.lambda_handler"
MIGRATION_TIMEOUT = cdk.Duration.minutes(5)
# The provider waits for the whole invocation, which may take the function's full timeout.
TRIGGER_TIMEOUT = cdk.Duration.minutes(6)


class DatabaseMigration(Construct):
    """A function in the VPC that calls `migrate()`, invoked synchronously by a CDK Trigger.

    The Trigger's provider runs outside the VPC and invokes the function (RequestResponse) once everything
    in `run_after` exists, and again whenever the function's code or configuration changes: that is,
    whenever a deployment ships new migrations. An exception in the function fails the custom resource,
    which fails and rolls back the stack update, so the service stack (deployed after this one) never
    runs code against a schema it does not know. `migrate()` is idempotent and serialized by an advisory
    lock, so a re-run or a racing deployment is harmless.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        database_secret_arn: str,
        database_address: dict[str, str],
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        run_after: Sequence[Construct],
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = ServiceFunction(
            self,
            "Function",
            handler=MIGRATION_HANDLER,
            description=f"Applies the flag database migrations ({environment_name})",
            environment={
                "DB_SECRET_ARN": database_secret_arn,
                **database_address,
                "FLAGS_ENV": environment_name,
                "POWERTOOLS_SERVICE_NAME": "flagservice-migrations",
                "LOG_LEVEL": "INFO",
            },
            vpc=vpc,
            security_group=security_group,
            log_retention=log_retention,
            removal_policy=removal_policy,
            timeout=MIGRATION_TIMEOUT,
            reserved_concurrent_executions=None,
        )
        self.trigger = triggers.Trigger(
            self,
            "Run",
            handler=self.function.function,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            execute_after=list(run_after),
            execute_on_handler_change=True,
            timeout=TRIGGER_TIMEOUT,
        )
