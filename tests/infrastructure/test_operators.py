"""The flag operators' policy: the admin routes of this environment's API, nothing else."""

from __future__ import annotations

from typing import Any

from tests.infrastructure.conftest import only_resource


def statements(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    _, policy = only_resource(template_json, "AWS::IAM::ManagedPolicy")
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_operators_may_invoke_only_the_admin_routes_of_this_api_stage(service_template_json: dict[str, Any]) -> None:
    api_id, _ = only_resource(service_template_json, "AWS::ApiGateway::RestApi")
    stage_id, stage = only_resource(service_template_json, "AWS::ApiGateway::Stage")
    invoke = statements(service_template_json)["FlagAdminApi"]
    parts = invoke["Resource"]["Fn::Join"][1]

    assert invoke["Action"] == "execute-api:Invoke" and invoke["Effect"] == "Allow"
    assert {"Ref": api_id} in parts
    assert "".join(p for p in parts if isinstance(p, str)).endswith(f"/{stage['Properties']['StageName']}/*/admin/*")
    assert stage_id  # the stage exists; its name is in the ARN


def test_operators_may_read_the_readers_key_for_flagctl_reads(service_template_json: dict[str, Any]) -> None:
    key_id, _ = only_resource(service_template_json, "AWS::ApiGateway::ApiKey")
    read_key = statements(service_template_json)["ReadersApiKey"]

    assert read_key["Action"] == "apigateway:GET"
    assert {"Ref": key_id} in read_key["Resource"]["Fn::Join"][1]
    assert set(statements(service_template_json)) == {"FlagAdminApi", "ReadersApiKey"}


def test_the_policy_is_published_for_attachment(service_template_json: dict[str, Any]) -> None:
    policy_id, _ = only_resource(service_template_json, "AWS::IAM::ManagedPolicy")

    assert service_template_json["Outputs"]["OperatorPolicyArn"]["Value"] == {"Ref": policy_id}
