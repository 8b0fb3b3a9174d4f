"""The Lambda defaults every function of the service shares, declared once.

Issue 5's flag function and the migration function are both a `ServiceFunction`: arm64, Python 3.12, the
one runtime bundle (stacks/bundling.py), the isolated subnets, its own log group with the environment's
retention. A function gets only its handler, its settings and its security group.
"""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.bundling import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, runtime_code
from stacks.constructs.network import ISOLATED
from stacks.nag import acknowledge, aws_managed_policy

# Local-only settings (CONTRACT.md section 4): a deployed function reads secrets and uses IAM instead.
FORBIDDEN_ENVIRONMENT = frozenset({"DATABASE_URL", "ADMIN_TOKEN", "PUSH_TOKEN_SECRET", "PUSH_PUBLISH_URL"})
MANAGED_POLICIES = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole")


class ServiceFunction(Construct):
    """A Lambda function of the flag service in the VPC; `function` is the `lambda_.Function`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        environment: Mapping[str, str],
        vpc: ec2.IVpc | None,
        security_group: ec2.ISecurityGroup | None,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
        memory_size: int = 256,
        timeout: cdk.Duration | None = None,
        reserved_concurrent_executions: int | None = None,
        keep_old_versions: bool = False,
        version_description: str | None = None,
    ) -> None:
        """`keep_old_versions` retains each published version when the next one replaces it (rollback targets);
        `vpc` None: a function outside the VPC (the push channel's publisher and authorizer reach public APIs)."""
        super().__init__(scope, construct_id)
        forbidden = FORBIDDEN_ENVIRONMENT.intersection(environment)
        if forbidden:
            raise ValueError(f"a deployed function must not get {', '.join(sorted(forbidden))}")
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            code=runtime_code(),
            handler=handler,
            description=description,
            environment=dict(environment),
            vpc=vpc,
            vpc_subnets=ISOLATED if vpc else None,
            security_groups=[security_group] if security_group else None,
            log_group=self.log_group,
            memory_size=memory_size,
            timeout=timeout or cdk.Duration.seconds(30),
            reserved_concurrent_executions=reserved_concurrent_executions,
            current_version_options=lambda_.VersionOptions(
                removal_policy=cdk.RemovalPolicy.RETAIN, description=version_description
            )
            if keep_old_versions
            else None,
        )
        self._acknowledge(MANAGED_POLICIES if vpc else MANAGED_POLICIES[:1])

    def _acknowledge(self, policies: tuple[str, ...]) -> None:
        assert self.function.role is not None
        for policy in policies:
            acknowledge(
                self.function.role,
                aws_managed_policy(policy),
                "AWS-maintained minimum for a function in a VPC: its network interfaces and its logs.",
            )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 on purpose: the bundle's wheels are resolved and tested for cp312 "
            "(tests/infrastructure/test_wheels.py); the runtime moves together with requirements.txt.",
        )
