"""The public door: an API Gateway REST API in front of the flag function's `live` alias."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import ApiConfig
from stacks.nag import acknowledge, aws_managed_policy, logical_id

STAGE_NAME = "v1"
ADMIN_PATH = "admin"
CONSOLE_PATH = "console"
# API Gateway's own refusals, in the contract's error shape: (status, errorCode, extra headers).
GATEWAY_ERRORS: dict[str, tuple[str | None, str, dict[str, str]]] = {
    "MISSING_AUTHENTICATION_TOKEN": ("401", "UNAUTHORIZED", {}),  # /admin/* without a SigV4 signature
    "UNAUTHORIZED": ("401", "UNAUTHORIZED", {}),
    "INVALID_SIGNATURE": ("403", "FORBIDDEN", {}),
    "EXPIRED_TOKEN": ("403", "FORBIDDEN", {}),
    "ACCESS_DENIED": ("403", "FORBIDDEN", {}),  # signed, but the caller's IAM policy does not allow it
    "INVALID_API_KEY": ("403", "FORBIDDEN", {}),  # a read with a missing or unknown X-API-Key
    "THROTTLED": ("429", "RATE_LIMITED", {"Retry-After": "1"}),
    "QUOTA_EXCEEDED": ("429", "RATE_LIMITED", {"Retry-After": "3600"}),
    "REQUEST_TOO_LARGE": ("413", "PAYLOAD_TOO_LARGE", {}),
    "RESOURCE_NOT_FOUND": ("404", "NOT_FOUND", {}),
    "DEFAULT_4XX": (None, "GENERAL", {}),  # keeps API Gateway's status
    "DEFAULT_5XX": (None, "GENERAL", {}),
}
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "time": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.userArn",
    # Console people all sign as their group's role (one userArn per group): the user pool user tells them apart.
    "person": "$context.identity.cognitoAuthenticationProvider",
    "apiKeyId": "$context.identity.apiKeyId",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "error": "$context.error.responseType",
    "userAgent": "$context.identity.userAgent",
}


def error_template(code: str) -> str:
    """A gateway response body: the code, and API Gateway's message as an escaped JSON string."""
    return '{"errorCode":"' + code + '","errorDetails":$context.error.messageString}'


class FlagApi(Construct):
    """REST API, regional, one stage; every path reaches the handler through a catch-all proxy.

    Reads (`/`, `/{proxy+}`) need an API key of the usage plan; `/admin` and `/admin/{proxy+}` need a
    SigV4 signature (IAM authorization) and no key; `GET /console` and `/console/{proxy+}` (the console's
    static page and assets) need neither (another method there has no API Gateway method: 401). API Gateway
    picks the most specific resource, so no admin path can be reached with an API key alone. Refusals by
    API Gateway itself use the contract's error shape. The stage throttles everyone; the usage plan throttles each key.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        alias: lambda_.IFunction,
        config: ApiConfig,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=removal_policy)
        self.api = apigateway.RestApi(
            self,
            "Api",
            rest_api_name=f"flagservice-{environment_name}",
            description=f"Feature flag API ({environment_name})",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # API Gateway's account-level role for execution logs (kept on delete: other APIs may use it).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=config.throttle_rate_per_second,
                throttling_burst_limit=config.throttle_burst,
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                metrics_enabled=True,
                data_trace_enabled=False,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
            ),
        )
        integration = apigateway.LambdaIntegration(alias, proxy=True, allow_test_invoke=False)
        self.read_methods = [
            self.api.root.add_method("ANY", integration, api_key_required=True),
            self.api.root.add_resource("{proxy+}").add_method("ANY", integration, api_key_required=True),
        ]
        admin = self.api.root.add_resource(ADMIN_PATH)
        signed = apigateway.AuthorizationType.IAM
        self.admin_methods = [
            admin.add_method("ANY", integration, authorization_type=signed),
            admin.add_resource("{proxy+}").add_method("ANY", integration, authorization_type=signed),
        ]
        # The console's page and assets: no API key, no signature (they hold no data; CONTRACT.md section 6).
        console = self.api.root.add_resource(CONSOLE_PATH)
        self.console_methods = [
            console.add_method("GET", integration),
            console.add_resource("{proxy+}").add_method("GET", integration),
        ]
        self._gateway_responses()
        self.api_key, self.usage_plan = self._read_access(environment_name, config)
        self._acknowledge()

    @property
    def stage(self) -> apigateway.Stage:
        return self.api.deployment_stage

    @property
    def logical_id(self) -> str:
        """The RestApi's logical id, resolved (cdk-nag names it in findings on policies that reference it)."""
        return logical_id(self.api)

    def admin_invoke_arn(self) -> str:
        """execute-api:Invoke on every method under /admin of this API's stage, and nothing else."""
        return self.api.arn_for_execute_api(method="*", path=f"/{ADMIN_PATH}/*", stage=STAGE_NAME)

    def _gateway_responses(self) -> None:
        for name, (status, code, headers) in GATEWAY_ERRORS.items():
            self.api.add_gateway_response(
                name.title().replace("_", ""),
                type=getattr(apigateway.ResponseType, _response_type_attribute(name)),
                status_code=status,
                response_headers={"Cache-Control": "'no-store'", **{k: f"'{v}'" for k, v in headers.items()}},
                templates={"application/json": error_template(code)},
            )

    def _read_access(self, environment_name: str, config: ApiConfig) -> tuple[apigateway.IApiKey, apigateway.UsagePlan]:
        """One API key for the readers of this environment (more keys: docs/operations.md)."""
        plan = self.api.add_usage_plan(
            "ReadersPlan",
            name=f"flagservice-{environment_name}-readers",
            description="Flag reads: every API key gets this per-key throttle",
            throttle=apigateway.ThrottleSettings(
                rate_limit=config.key_throttle_rate_per_second, burst_limit=config.key_throttle_burst
            ),
            api_stages=[apigateway.UsagePlanPerApiStage(api=self.api, stage=self.stage)],
        )
        key = apigateway.ApiKey(
            self,
            "ReadersKey",
            description=f"Default key for flag readers ({environment_name}); the value is generated by API Gateway",
        )
        plan.add_api_key(key)
        return key, plan

    def _acknowledge(self) -> None:
        acknowledge(
            self.api.node.find_child("CloudWatchRole"),
            aws_managed_policy("AmazonAPIGatewayPushToCloudWatchLogs"),
            "AWS-maintained policy of API Gateway's account-level logging role, which stage execution "
            "logs need; API Gateway alone assumes it.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "The handler validates every body, path and query parameter and answers in the contract's "
            "error shape; an API Gateway validator would only know the models given to it and answer in its own.",
        )
        acknowledge(
            self.stage,
            "AwsSolutions-APIG3",
            "No WAF for now: reads need an API key, writes a SigV4 signature, and the stage and usage "
            "plan throttle; a web ACL adds $5 a month plus rules and per-request fees (docs/operations.md).",
        )
        for method in self.read_methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                "Reads are authorized by API keys of a usage plan (CONTRACT.md: X-API-Key); the handler "
                "serves no write on these resources: /admin is a separate resource with IAM authorization.",
            )
        for method in self.read_methods:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Callers of reads are services with API keys (usage plans), not people: a user pool "
                "authorizer would shut them out.",
            )
        for method in self.admin_methods:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "IAM (SigV4) authorizes /admin: console users sign with their group role's credentials from "
                "the Cognito identity pool (console_sign_in.py), flagctl with IAM; a user pool authorizer "
                "would accept a bearer token here, which the contract forbids.",
            )
        for method in self.console_methods:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                "GET of the console's static page and assets, open by contract: they hold no data, and the "
                "page signs people in through Cognito before any admin call (IAM-authorized).",
            )
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "The console's static page and assets must load before anyone is signed in: the page itself "
                "sends people to the Cognito hosted UI.",
            )


def _response_type_attribute(name: str) -> str:
    """ResponseType's Python attribute for a CloudFormation response type (DEFAULT_4XX -> DEFAULT_4_XX)."""
    return name.replace("4XX", "4_XX").replace("5XX", "5_XX")
