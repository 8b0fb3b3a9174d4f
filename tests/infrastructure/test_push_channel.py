"""The push channel's resources in every environment (issue 17, stacks/constructs/push_channel.py): AppSync Events
with IAM-only publish and authorizer-only subscribe, the publisher and authorizer outside the VPC, the on-failure
queue and its alarm, least-privilege grants, and the flag function pointed at it all."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from stacks.constructs.push_channel import AUTHORIZER_HANDLER, NAMESPACE, PUBLISH_RETRIES, PUBLISHER_HANDLER
from tests.infrastructure.conftest import function_id, only_id
from tests.infrastructure.test_flag_function import variables

FUNCTION = "AWS::Lambda::Function"


def _statements(template: Template, function: str) -> list[dict[str, Any]]:
    role = template.to_json()["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role}]}})
    return [
        statement for policy in policies.values() for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_browsers_connect_and_subscribe_through_the_authorizer_and_only_iam_publishes(
    service_template: Template,
) -> None:
    authorizer = function_id(service_template, AUTHORIZER_HANDLER)
    lambda_mode, iam_mode = [{"AuthType": "AWS_LAMBDA"}], [{"AuthType": "AWS_IAM"}]

    service_template.resource_count_is("AWS::AppSync::Api", 1)
    service_template.has_resource_properties(
        "AWS::AppSync::Api",
        {
            "EventConfig": {
                "ConnectionAuthModes": lambda_mode,
                "DefaultSubscribeAuthModes": lambda_mode,
                "DefaultPublishAuthModes": iam_mode,
                "AuthProviders": Match.array_with([Match.object_like({"AuthType": "AWS_LAMBDA",
                    "LambdaAuthorizerConfig": {"AuthorizerUri": {"Fn::GetAtt": [authorizer, "Arn"]},
                                               "AuthorizerResultTtlInSeconds": 300}})]),
            }
        },
    )  # fmt: skip
    service_template.resource_count_is("AWS::AppSync::ChannelNamespace", 1)
    service_template.has_resource_properties("AWS::AppSync::ChannelNamespace", {"Name": NAMESPACE})
    service_template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"FunctionName": {"Fn::GetAtt": [authorizer, "Arn"]}, "Principal": "appsync.amazonaws.com",
         "SourceArn": {"Fn::GetAtt": [only_id(service_template, "AWS::AppSync::Api"), "ApiArn"]}},
    )  # fmt: skip


def test_the_publisher_and_the_authorizer_run_outside_the_vpc_and_the_flag_function_inside(
    service_template: Template,
) -> None:
    outside = service_template.find_resources(FUNCTION, {"Properties": {"VpcConfig": Match.absent()}})

    assert function_id(service_template, PUBLISHER_HANDLER) in outside
    assert function_id(service_template, AUTHORIZER_HANDLER) in outside
    assert function_id(service_template, "flagservice.handler.lambda_handler") not in outside


def test_a_publish_that_keeps_failing_lands_in_a_queue_whose_depth_pages(service_template: Template) -> None:
    publisher = function_id(service_template, PUBLISHER_HANDLER)
    queue = only_id(service_template, "AWS::SQS::Queue")

    service_template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {"FunctionName": {"Ref": publisher}, "MaximumRetryAttempts": PUBLISH_RETRIES,
         "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}}},
    )  # fmt: skip
    service_template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"AlarmName": Match.string_like_regexp("-PushPublishFailed$"), "Namespace": "AWS/SQS", "Threshold": 0,
         "MetricName": "ApproximateNumberOfMessagesVisible", "AlarmActions": [Match.any_value()],
         "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]},
    )  # fmt: skip
    for name, function in (("PushPublisherErrors", publisher), ("PushAuthorizerErrors", None)):
        dimensions = [{"Name": "FunctionName", "Value": {"Ref": function}}] if function else Match.any_value()
        service_template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {"AlarmName": Match.string_like_regexp(f"-{name}$"), "MetricName": "Errors", "Dimensions": dimensions},
        )


def test_the_publisher_may_publish_to_the_flags_namespace_only_and_read_no_secret(service_template: Template) -> None:
    statements = _statements(service_template, function_id(service_template, PUBLISHER_HANDLER))

    publish = [s for s in statements if s["Action"] == "appsync:EventPublish"]
    assert len(publish) == 1
    assert publish[0]["Resource"]["Fn::Join"][1][-1] == f"/channelNamespace/{NAMESPACE}"
    assert not [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert all("*" not in str(s["Resource"]) for s in statements)


def test_the_authorizer_reads_the_token_key_and_nothing_else(service_template: Template) -> None:
    statements = _statements(service_template, function_id(service_template, AUTHORIZER_HANDLER))
    secret = only_id(service_template, "AWS::SecretsManager::Secret")

    assert statements == [{"Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                           "Effect": "Allow", "Resource": {"Ref": secret}}]  # fmt: skip


def test_the_flag_function_advertises_the_channel_and_invokes_the_publisher(service_template: Template) -> None:
    env = variables(service_template)
    api = only_id(service_template, "AWS::AppSync::Api")

    assert env["PUSH_PUBLISHER_FUNCTION"] == {"Ref": function_id(service_template, PUBLISHER_HANDLER)}
    assert env["PUSH_TOKEN_SECRET_ARN"] == {"Ref": only_id(service_template, "AWS::SecretsManager::Secret")}
    assert env["PUSH_CHANNEL_HOST"] == {"Fn::GetAtt": [api, "Dns.Http"]}
    realtime = {"Fn::GetAtt": [api, "Dns.Realtime"]}
    assert env["PUSH_CHANNEL_URL"] == {"Fn::Join": ["", ["wss://", realtime, "/event/realtime"]]}
