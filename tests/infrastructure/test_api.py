"""API Gateway: catch-all proxy to the alias, IAM on /admin, API keys on reads, contract-shaped refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Capture, Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import only_id

# CONTRACT.md: what API Gateway itself answers, in the contract's error shape.
EXPECTED_REFUSALS = {
    "MISSING_AUTHENTICATION_TOKEN": ("401", "UNAUTHORIZED"),
    "INVALID_SIGNATURE": ("403", "FORBIDDEN"),
    "ACCESS_DENIED": ("403", "FORBIDDEN"),
    "EXPIRED_TOKEN": ("403", "FORBIDDEN"),
    "INVALID_API_KEY": ("403", "FORBIDDEN"),
    "THROTTLED": ("429", "RATE_LIMITED"),
    "DEFAULT_4XX": (None, "GENERAL"),
    "DEFAULT_5XX": (None, "GENERAL"),
}
METHOD = "AWS::ApiGateway::Method"
ROUTES = ("/", "/{proxy+}", "/admin", "/admin/{proxy+}", "/console", "/console/{proxy+}")
CATCH_ALL = ROUTES[:4]


def route_resources(template: Template) -> dict[str, Any]:
    """A reference to each route's API resource: `/` is the API's root, the others resources under it."""
    api = only_id(template, "AWS::ApiGateway::RestApi")
    refs: dict[str, Any] = {"/": {"Fn::GetAtt": [api, "RootResourceId"]}}
    for route in ROUTES[1:]:
        parent, part = route.rsplit("/", 1)
        (found,) = template.find_resources(
            "AWS::ApiGateway::Resource", {"Properties": {"PathPart": part, "ParentId": refs[parent or "/"]}}
        )
        refs[route] = {"Ref": found}
    return refs


def test_every_path_reaches_the_handler_through_four_catch_all_methods(service_template: Template) -> None:
    routes = route_resources(service_template)

    service_template.resource_count_is(METHOD, 6)  # plus the console's two GETs
    for route in CATCH_ALL:
        service_template.has_resource_properties(METHOD, {"HttpMethod": "ANY", "ResourceId": routes[route]})


@pytest.mark.parametrize("route", ["/console", "/console/{proxy+}"])
def test_the_console_page_and_assets_need_no_api_key_and_no_signature_and_only_get(
    service_template: Template, route: str
) -> None:
    resource = route_resources(service_template)[route]
    found = service_template.find_resources(METHOD, {"Properties": {"ResourceId": resource}})

    assert [method["Properties"]["HttpMethod"] for method in found.values()] == ["GET"]
    service_template.has_resource_properties(
        METHOD, {"ResourceId": resource, "AuthorizationType": "NONE", "ApiKeyRequired": Match.absent()}
    )


def test_every_method_is_a_lambda_proxy_to_the_live_alias(service_template: Template) -> None:
    alias = only_id(service_template, "AWS::Lambda::Alias")
    to_alias = {"Fn::Join": ["", Match.array_with([{"Ref": alias}])]}

    service_template.all_resources_properties(
        METHOD, {"Integration": {"Type": "AWS_PROXY", "IntegrationHttpMethod": "POST", "Uri": to_alias}}
    )


@pytest.mark.parametrize("route", ["/admin", "/admin/{proxy+}"])
def test_admin_routes_need_a_sigv4_signature_and_no_api_key(service_template: Template, route: str) -> None:
    method = {"HttpMethod": "ANY", "ResourceId": route_resources(service_template)[route]}

    service_template.has_resource_properties(METHOD, {**method, "AuthorizationType": "AWS_IAM"})
    service_template.resource_properties_count_is(METHOD, {**method, "ApiKeyRequired": True}, 0)


@pytest.mark.parametrize("route", ["/", "/{proxy+}"])
def test_reads_need_an_api_key(service_template: Template, route: str) -> None:
    method = {"HttpMethod": "ANY", "ResourceId": route_resources(service_template)[route]}

    service_template.has_resource_properties(METHOD, {**method, "ApiKeyRequired": True})


@pytest.mark.parametrize(("response_type", "refusal"), EXPECTED_REFUSALS.items())
def test_gateway_refusals_use_the_contract_error_shape(
    service_template: Template, response_type: str, refusal: tuple[str | None, str]
) -> None:
    status, code = refusal
    body = Capture()
    service_template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": response_type,
            "StatusCode": status if status else Match.absent(),
            "ResponseTemplates": {"application/json": body},
        },
    )

    shown = json.loads(body.as_string().replace("$context.error.messageString", '"message"'))
    assert shown == {"errorCode": code, "errorDetails": "message"}


def test_throttled_answers_say_when_to_retry(service_template: Template) -> None:
    service_template.has_resource_properties(
        "AWS::ApiGateway::GatewayResponse",
        {
            "ResponseType": "THROTTLED",
            "StatusCode": "429",
            "ResponseParameters": Match.object_like({"gatewayresponse.header.Retry-After": "'1'"}),
        },
    )


def test_the_stage_throttles_and_logs_errors(service_template: Template, config: EnvironmentConfig) -> None:
    service_template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "MethodSettings": [
                Match.object_like(
                    {
                        "HttpMethod": "*",
                        "ResourcePath": "/*",
                        "LoggingLevel": "ERROR",
                        "MetricsEnabled": True,
                        "DataTraceEnabled": False,
                        "ThrottlingRateLimit": config.api.throttle_rate_per_second,
                        "ThrottlingBurstLimit": config.api.throttle_burst,
                    }
                )
            ]
        },
    )


def test_api_gateway_may_write_execution_logs(service_template: Template) -> None:
    # Given the role API Gateway's account settings name for execution logs
    role = Capture()
    service_template.resource_count_is("AWS::ApiGateway::Account", 1)
    service_template.has_resource_properties(
        "AWS::ApiGateway::Account", {"CloudWatchRoleArn": {"Fn::GetAtt": [role, "Arn"]}}
    )

    # Then API Gateway may assume it
    trust = Match.object_like({"Principal": Match.exact({"Service": "apigateway.amazonaws.com"})})
    assumed_by_api_gateway = service_template.find_resources(
        "AWS::IAM::Role", {"Properties": {"AssumeRolePolicyDocument": {"Statement": Match.array_with([trust])}}}
    )
    assert role.as_string() in assumed_by_api_gateway


def test_access_logs_are_json_lines_with_the_caller_in_their_own_group(
    service_template: Template, config: EnvironmentConfig
) -> None:
    # Given the stage's access log format and destination group
    log_format, group = Capture(), Capture(Match.string_like_regexp("^(?!AWS::)"))
    service_template.resource_count_is("AWS::ApiGateway::Stage", 1)
    service_template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": {
                "Format": log_format,
                "DestinationArn": {"Fn::Join": ["", Match.array_with([{"Ref": group}])]},
            }
        },
    )

    # When the format is read as the JSON line it writes
    fields = json.loads(log_format.as_string())

    # Then it names the caller, and the group is a log group kept as long as the environment's logs
    assert {"requestId", "status", "caller", "apiKeyId", "path", "latencyMs"} <= set(fields)
    assert fields["caller"] == "$context.identity.userArn"
    kept = service_template.find_resources(
        "AWS::Logs::LogGroup", {"Properties": {"RetentionInDays": config.log_retention_days}}
    )
    assert group.as_string() in kept


def test_each_api_key_gets_the_usage_plan_throttle(service_template: Template, config: EnvironmentConfig) -> None:
    # Given the usage plan, the readers' key and the stage
    plan = only_id(service_template, "AWS::ApiGateway::UsagePlan")
    key = only_id(service_template, "AWS::ApiGateway::ApiKey")
    stage = only_id(service_template, "AWS::ApiGateway::Stage")
    throttle = {"RateLimit": config.api.key_throttle_rate_per_second, "BurstLimit": config.api.key_throttle_burst}

    # Then the plan throttles each key on that stage, and the key is in the plan
    service_template.has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {"Throttle": Match.exact(throttle), "ApiStages": [Match.object_like({"Stage": {"Ref": stage}})]},
    )
    service_template.resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)
    service_template.has_resource_properties(
        "AWS::ApiGateway::UsagePlanKey",
        Match.exact({"KeyId": {"Ref": key}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan}}),
    )


def test_only_this_api_may_invoke_the_alias(service_template: Template) -> None:
    alias = only_id(service_template, "AWS::Lambda::Alias")
    api = only_id(service_template, "AWS::ApiGateway::RestApi")

    on_alias = service_template.find_resources(
        "AWS::Lambda::Permission", {"Properties": {"FunctionName": {"Ref": alias}}}
    )
    assert len(on_alias) == 6  # one per method, no console test-invoke ones
    for permission in on_alias.values():
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
        assert {"Ref": api} in permission["Properties"]["SourceArn"]["Fn::Join"][1]
    # The only other permission lets AppSync call the push channel's authorizer (test_push_channel.py).
    assert len(service_template.find_resources("AWS::Lambda::Permission")) == 7
