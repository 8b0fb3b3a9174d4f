"""API Gateway: catch-all proxy to the alias, IAM on /admin, API keys on reads, contract-shaped refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import only_resource, resources_of_type

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


def resource_paths(template_json: dict[str, Any]) -> dict[str, str]:
    """Logical id of each API resource -> its full path ("" is the root)."""
    resources = resources_of_type(template_json, "AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(key: str) -> str:
        if key not in paths:
            parent = resources[key]["Properties"]["ParentId"]
            prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"])
            paths[key] = f"{prefix}/{resources[key]['Properties']['PathPart']}"
        return paths[key]

    for key in resources:
        path_of(key)
    return paths


def methods_by_path(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    paths = resource_paths(template_json)
    found = {}
    for method in resources_of_type(template_json, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        path = "/" if "Fn::GetAtt" in resource else paths[resource["Ref"]]
        found[f"{props['HttpMethod']} {path}"] = props
    return found


def test_every_path_reaches_the_handler_through_four_catch_all_methods(service_template_json: dict[str, Any]) -> None:
    assert set(methods_by_path(service_template_json)) == {
        "ANY /",
        "ANY /{proxy+}",
        "ANY /admin",
        "ANY /admin/{proxy+}",
    }


def test_every_method_is_a_lambda_proxy_to_the_live_alias(service_template_json: dict[str, Any]) -> None:
    alias_id, _ = only_resource(service_template_json, "AWS::Lambda::Alias")

    for method in methods_by_path(service_template_json).values():
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY" and integration["IntegrationHttpMethod"] == "POST"
        assert {"Ref": alias_id} in integration["Uri"]["Fn::Join"][1]


@pytest.mark.parametrize("path", ["ANY /admin", "ANY /admin/{proxy+}"])
def test_admin_routes_need_a_sigv4_signature_and_no_api_key(service_template_json: dict[str, Any], path: str) -> None:
    method = methods_by_path(service_template_json)[path]

    assert method["AuthorizationType"] == "AWS_IAM"
    assert not method.get("ApiKeyRequired", False)


@pytest.mark.parametrize("path", ["ANY /", "ANY /{proxy+}"])
def test_reads_need_an_api_key(service_template_json: dict[str, Any], path: str) -> None:
    assert methods_by_path(service_template_json)[path]["ApiKeyRequired"] is True


def test_gateway_refusals_use_the_contract_error_shape(service_template_json: dict[str, Any]) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources_of_type(service_template_json, "AWS::ApiGateway::GatewayResponse").values()
    }

    for response_type, (status, code) in EXPECTED_REFUSALS.items():
        response = responses[response_type]
        template = response["ResponseTemplates"]["application/json"]
        body = json.loads(template.replace("$context.error.messageString", '"message"'))
        assert response.get("StatusCode") == status, response_type
        assert body == {"errorCode": code, "errorDetails": "message"}, response_type


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


def test_api_gateway_may_write_execution_logs(service_template_json: dict[str, Any]) -> None:
    _, account = only_resource(service_template_json, "AWS::ApiGateway::Account")
    role = service_template_json["Resources"][account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]

    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "apigateway.amazonaws.com"
    }


def test_access_logs_are_json_lines_with_the_caller_in_their_own_group(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    _, stage = only_resource(service_template_json, "AWS::ApiGateway::Stage")
    setting = stage["Properties"]["AccessLogSetting"]
    fields = json.loads(setting["Format"])
    log_group_id = next(
        p["Ref"]
        for p in setting["DestinationArn"]["Fn::Join"][1]
        if isinstance(p, dict) and "Ref" in p and not p["Ref"].startswith("AWS::")
    )
    group = service_template_json["Resources"][log_group_id]

    assert {"requestId", "status", "caller", "apiKeyId", "path", "latencyMs"} <= set(fields)
    assert fields["caller"] == "$context.identity.userArn"
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == config.log_retention_days


def test_each_api_key_gets_the_usage_plan_throttle(
    service_template_json: dict[str, Any], config: EnvironmentConfig
) -> None:
    plan_id, plan = only_resource(service_template_json, "AWS::ApiGateway::UsagePlan")
    key_id, _ = only_resource(service_template_json, "AWS::ApiGateway::ApiKey")
    _, link = only_resource(service_template_json, "AWS::ApiGateway::UsagePlanKey")
    stage_id, _ = only_resource(service_template_json, "AWS::ApiGateway::Stage")

    assert plan["Properties"]["Throttle"] == {
        "RateLimit": config.api.key_throttle_rate_per_second,
        "BurstLimit": config.api.key_throttle_burst,
    }
    assert plan["Properties"]["ApiStages"][0]["Stage"] == {"Ref": stage_id}
    assert link["Properties"] == {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}}


def test_only_this_api_may_invoke_the_alias(service_template_json: dict[str, Any]) -> None:
    alias_id, _ = only_resource(service_template_json, "AWS::Lambda::Alias")
    api_id, _ = only_resource(service_template_json, "AWS::ApiGateway::RestApi")
    permissions = resources_of_type(service_template_json, "AWS::Lambda::Permission").values()

    assert len(permissions) == 4  # one per method, no console test-invoke permissions
    for permission in permissions:
        props = permission["Properties"]
        assert props["Principal"] == "apigateway.amazonaws.com"
        assert props["FunctionName"] == {"Ref": alias_id}
        assert {"Ref": api_id} in props["SourceArn"]["Fn::Join"][1]
