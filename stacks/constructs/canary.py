"""Safe deploys: every new version takes traffic through a CodeDeploy canary that can undo itself."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

HOOK_DIR = Path(__file__).resolve().parent.parent / "hooks"
HOOK_HANDLER = "canary_hook.handler"
# The hook needs only boto3, which every Python runtime ships: it can follow the newest runtime.
HOOK_RUNTIME = lambda_.Runtime.PYTHON_3_14
# Up to about 30 s waiting for IAM per invocation (the hook's AccessDenied patience), then the report.
HOOK_TIMEOUT = cdk.Duration.seconds(90)
DEPLOYMENT_CONFIG = codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES
PROBE_FLAG_KEY = "canary-probe"
# The runtime's names (runtime/flagservice/telemetry.py); tests/infrastructure/test_alarm_metrics.py renders
# the handler's EMF for a 5xx and checks that the rollback alarm matches it exactly.
SERVER_ERRORS_METRIC = "ServerErrorAnswers"
INTERNAL_ERRORS_METRIC = "InternalErrorAnswers"
VERSION_DIMENSION = "FunctionVersion"


class CanaryDeployment(Construct):
    """CodeDeploy canary (10 % for 5 minutes) for the `live` alias, with a pre-traffic hook and alarms.

    Order of a deployment: CloudFormation publishes the new version and updates the alias, which its
    UpdatePolicy hands to CodeDeploy. CodeDeploy runs the BeforeAllowTraffic hook (stacks/hooks/
    canary_hook.py: `/health` and a flag read on the new version), then shifts 10 % of the alias's traffic
    for 5 minutes, then the rest. A Failed hook, a stopped deployment or any alarm below in ALARM rolls the
    alias back to the previous version, and CloudFormation then rolls the stack update back.

    Every alarm watches the new version alone, so an incident in the version being replaced (its alarms
    already in ALARM) never blocks the fix; alias-wide alarms page people instead (monitoring.py):
    - 5xx answers of the new version, a metric of ours: the handler turns exceptions into 500/503
      answers, which Lambda's `Errors` never counts. With `accept_degraded` (a fix deployed while a store
      is down), only the 5xx that are not 503 count: a 503 then means the store, not the release.
    - Lambda `Errors` of the new version (crashes, timeouts) and its p95 `Duration`: Lambda reports
      invocations through an alias with the executed version as `ExecutedVersion`.
    The version dimension is the deployed version itself (`Fn::GetAtt <Version>.Version`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        alias: lambda_.Alias,
        version: lambda_.IVersion,
        namespace: str,
        service_name: str,
        duration_p95_max_ms: float,
        accept_degraded: bool,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.accept_degraded = accept_degraded
        self._function = function
        self.hook = self._hook(function, version, accept_degraded, log_retention, removal_policy)
        self._allow_invoking_versions(function)
        self.alarms = self._alarms(function, alias, version, duration_p95_max_ms, namespace, service_name)
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "DeploymentGroup",
            alias=alias,
            deployment_config=DEPLOYMENT_CONFIG,
            pre_hook=self.hook,
            alarms=list(self.alarms.values()),
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        self.hook.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codedeploy:GetDeployment"], resources=[self.deployment_group.deployment_group_arn]
            )
        )
        self.hook.add_to_role_policy(
            iam.PolicyStatement(
                actions=["codedeploy:GetApplicationRevision"],
                resources=[self.deployment_group.application.application_arn],
            )
        )
        # The alias's UpdatePolicy names the hook (a Ref: CloudFormation updates the hook first, cfn-lint's W3005
        # says as much of an explicit DependsOn), and the hook waits for its role's policy, so the hook that
        # CodeDeploy calls has this release's TARGET_VERSION and permissions. It still retries an AccessDenied
        # invoke for about 30 s, because IAM is eventually consistent.
        self._acknowledge()

    def _allow_invoking_versions(self, function: lambda_.Function) -> None:
        """Any published version of the flag function: the one CodeDeploy targets may be an older release
        (a redeploy or a rollback), and a grant that does not change with every release is in place long
        before the hook runs (no IAM propagation delay)."""
        self.hook.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[f"{function.function_arn}:*"])
        )

    def _acknowledge(self) -> None:
        role = self.deployment_group.role
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSCodeDeployRoleForLambdaLimited]",
                reason="AWS-maintained minimum for CodeDeploy on Lambda: read alarms, move the alias, invoke hooks; "
                "AWS updates it when CodeDeploy needs more.",
            )
        )
        hook_arn = cdk.Stack.of(self).resolve(cdk.Stack.of(self).get_logical_id(self._cfn(self.hook)))
        cdk.Validations.of(role.node.find_child("DefaultPolicy")).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{hook_arn}.Arn>:*]",
                reason="CodeDeploy may invoke only the canary hook function: the wildcard covers that one "
                "function's versions and aliases, as CDK's invoke grant always does.",
            )
        )
        hook_role = self.hook.role
        assert hook_role is not None
        function_id = cdk.Stack.of(self).resolve(cdk.Stack.of(self).get_logical_id(self._cfn(self._function)))
        cdk.Validations.of(hook_role.node.find_child("DefaultPolicy")).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{function_id}.Arn>:*]",
                reason="The hook may invoke the published versions of the one flag function: the version "
                "CodeDeploy targets may be an older release, and a grant that changes with every release "
                "would still be propagating through IAM when the hook runs.",
            )
        )

    @staticmethod
    def _cfn(construct: Construct) -> cdk.CfnElement:
        child = construct.node.default_child
        assert isinstance(child, cdk.CfnElement)
        return child

    def _hook(
        self,
        function: lambda_.Function,
        version: lambda_.IVersion,
        accept_degraded: bool,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> lambda_.Function:
        """Outside the VPC (it must reach CodeDeploy); logs only to its own group, no managed policy."""
        log_group = logs.LogGroup(self, "HookLogs", retention=log_retention, removal_policy=removal_policy)
        role = iam.Role(
            self,
            "HookRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Canary hook: invoke the new flag function version, report to CodeDeploy",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        hook = lambda_.Function(
            self,
            "Hook",
            runtime=HOOK_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(HOOK_DIR), exclude=["__pycache__", "*.pyc", "__init__.py"]),
            handler=HOOK_HANDLER,
            description="CodeDeploy BeforeAllowTraffic: /health and a flag read on the new version",
            role=role,
            timeout=HOOK_TIMEOUT,
            memory_size=256,
            log_group=log_group,
            environment={
                "TARGET_FUNCTION_NAME": function.function_name,
                "TARGET_VERSION": version.version,  # what this deployment publishes; CodeDeploy's record wins
                "PROBE_FLAG_KEY": PROBE_FLAG_KEY,
                "ACCEPT_DEGRADED": "true" if accept_degraded else "false",
            },
        )
        return hook

    def _alarms(
        self,
        function: lambda_.Function,
        alias: lambda_.Alias,
        version: lambda_.IVersion,
        duration_p95_max_ms: float,
        namespace: str,
        service_name: str,
    ) -> dict[str, cloudwatch.Alarm]:
        minute = cdk.Duration.minutes(1)
        executed = {
            "FunctionName": function.function_name,
            "Resource": f"{function.function_name}:{alias.alias_name}",
            "ExecutedVersion": version.version,
        }

        def metric(namespace: str, name: str, statistic: str, dimensions: dict[str, str]) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace, metric_name=name, dimensions_map=dimensions, statistic=statistic, period=minute
            )

        answers = INTERNAL_ERRORS_METRIC if self.accept_degraded else SERVER_ERRORS_METRIC
        ours = {"service": service_name, VERSION_DIMENSION: version.version}
        specs = {
            "NewVersionServerErrors": (
                metric(namespace, answers, "Sum", ours),
                1,
                1,
                f"Any {'non-503 ' if self.accept_degraded else ''}5xx answer of the new version",
            ),
            "NewVersionErrors": (metric("AWS/Lambda", "Errors", "Sum", executed), 1, 1, "Any error of the new version"),
            "NewVersionDurationP95": (
                metric("AWS/Lambda", "Duration", "p95", executed),
                duration_p95_max_ms,
                2,
                f"p95 duration of the new version above {duration_p95_max_ms:g} ms for 2 minutes",
            ),
        }
        return {
            name: cloudwatch.Alarm(
                self,
                name,
                metric=metric_,
                threshold=threshold,
                evaluation_periods=periods,
                datapoints_to_alarm=periods,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"Canary rollback: {description}",
            )
            for name, (metric_, threshold, periods, description) in specs.items()
        }
