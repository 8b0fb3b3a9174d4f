"""The flag operators' policy: the admin routes of this environment's API, nothing else."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Capture, Match, Template

POLICY = "AWS::IAM::ManagedPolicy"


def statement(sid: str, action: str, resource_parts: list[Any]) -> Any:
    """An Allow statement whose resource ARN (an Fn::Join) contains `resource_parts` in that order."""
    arn = {"Fn::Join": ["", Match.array_with(resource_parts)]}
    return Match.object_like({"Sid": sid, "Action": action, "Effect": "Allow", "Resource": arn})


def test_operators_may_invoke_only_the_admin_routes_of_this_api_stage(service_template: Template) -> None:
    # Given the API and its stage
    api, stage = Capture(), Capture()
    service_template.has_resource_properties("AWS::ApiGateway::Stage", {"RestApiId": {"Ref": api}, "StageName": stage})

    # Then the one policy lets operators invoke the admin paths of that API and stage
    admin = [{"Ref": api.as_string()}, f"/{stage.as_string()}/*/admin/*"]
    service_template.resource_count_is(POLICY, 1)
    service_template.has_resource_properties(
        POLICY,
        {"PolicyDocument": {"Statement": Match.array_with([statement("FlagAdminApi", "execute-api:Invoke", admin)])}},
    )


def test_operators_may_read_the_readers_key_for_flagctl_reads(service_template: Template) -> None:
    (key,) = service_template.find_resources("AWS::ApiGateway::ApiKey")

    service_template.has_resource_properties(
        POLICY,
        {
            "PolicyDocument": {
                "Statement": [
                    Match.object_like({"Sid": "FlagAdminApi"}),
                    statement("ReadersApiKey", "apigateway:GET", [{"Ref": key}]),
                ]
            }
        },
    )


def test_the_policy_is_published_for_attachment(service_template: Template) -> None:
    (policy,) = service_template.find_resources(POLICY)

    service_template.has_output("OperatorPolicyArn", {"Value": {"Ref": policy}})
