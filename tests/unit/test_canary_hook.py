"""The CodeDeploy pre-traffic hook (stacks/hooks/canary_hook.py), with fake AWS clients and no network.

Where the hook invokes "the new version", a fake Lambda client runs the real handler on the in-memory
service, so the events the hook sends are proven to be events the handler answers.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from flagservice.flags.model import FlagDefinition
from flagservice.handler import lambda_handler
from flagservice.service import FlagService
from stacks.hooks import canary_hook

FUNCTION = "FlagsService-prod-FlagFunctionHandler-abc123"
ENVIRON = {"TARGET_FUNCTION_NAME": FUNCTION, "PROBE_FLAG_KEY": "canary-probe"}
EVENT = {"DeploymentId": "d-TEST123", "LifecycleEventHookExecutionId": "hook-execution-1"}


def appspec(name: str = FUNCTION, version: str = "7") -> str:
    properties = {"Name": name, "Alias": "live", "CurrentVersion": "6", "TargetVersion": version}
    return json.dumps(
        {"version": 0.0, "Resources": [{"flags": {"Type": "AWS::Lambda::Function", "Properties": properties}}]}
    )


class FakeCodeDeploy:
    """get_deployment and put_lifecycle_event_hook_execution_status, recording the reports."""

    def __init__(self, content: str | None = None, *, broken: bool = False) -> None:
        self.content = content if content is not None else appspec()
        self.broken = broken
        self.reports: list[dict[str, str]] = []

    def get_deployment(self, *, deploymentId: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        if self.broken:
            raise RuntimeError("AccessDeniedException")
        revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": self.content, "sha256": "x"}}
        return {"deploymentInfo": {"deploymentId": deploymentId, "revision": revision}}

    def put_lifecycle_event_hook_execution_status(self, **report: str) -> dict[str, str]:
        self.reports.append(report)
        return {"lifecycleEventHookExecutionId": report["lifecycleEventHookExecutionId"]}


class HandlerLambda:
    """Lambda.invoke of a version, answered by the real handler (or by `scripted` answers per path)."""

    def __init__(self, scripted: dict[str, dict[str, Any]] | None = None, *, function_error: bool = False) -> None:
        self.scripted = scripted or {}
        self.function_error = function_error
        self.calls: list[tuple[str, str, str, str]] = []

    def invoke(self, *, FunctionName: str, Qualifier: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        event = json.loads(Payload)
        self.calls.append((FunctionName, Qualifier, event["httpMethod"], event["path"]))
        if self.function_error:
            error = {"errorMessage": "Task timed out after 10.00 seconds"}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(error).encode())}
        result = self.scripted.get(event["path"]) or lambda_handler(event, None)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result).encode())}


def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers or {}, "body": json.dumps(body)}


def run(codedeploy: FakeCodeDeploy, lambda_client: HandlerLambda, **environ: str) -> str:
    return canary_hook.run(EVENT, codedeploy=codedeploy, lambda_client=lambda_client, environ={**ENVIRON, **environ})


def test_a_healthy_version_is_reported_succeeded_after_health_and_a_flag_read(fake_service: FlagService) -> None:
    codedeploy, lambda_client = FakeCodeDeploy(), HandlerLambda()

    status = run(codedeploy, lambda_client)

    assert status == "Succeeded"
    assert codedeploy.reports == [
        {"deploymentId": "d-TEST123", "lifecycleEventHookExecutionId": "hook-execution-1", "status": "Succeeded"}
    ]
    assert lambda_client.calls == [
        (FUNCTION, "7", "GET", "/health"),
        (FUNCTION, "7", "GET", "/flags/canary-probe"),
    ]


def test_an_existing_probe_flag_passes_too(fake_service: FlagService) -> None:
    fake_service.put_flag(
        FlagDefinition.model_validate({"key": "canary-probe", "enabled": True}), actor="test", if_match=None
    )

    assert run(FakeCodeDeploy(), HandlerLambda()) == "Succeeded"


def test_a_function_error_fails_the_deployment(fake_service: FlagService) -> None:
    codedeploy = FakeCodeDeploy()

    assert run(codedeploy, HandlerLambda(function_error=True)) == "Failed"
    assert codedeploy.reports[0]["status"] == "Failed"


@pytest.mark.parametrize(
    "health",
    [
        answer(503, {"status": "degraded", "cache": "unavailable", "database": "unavailable"}),
        answer(200, {"status": "degraded", "cache": "unavailable", "database": "ok"}),
        answer(500, {"errorCode": "GENERAL", "errorDetails": "the service is misconfigured"}),
        {"statusCode": 200, "headers": {}, "body": "<html>"},
    ],
)
def test_an_unhealthy_version_fails_before_taking_traffic(fake_service: FlagService, health: dict[str, Any]) -> None:
    codedeploy, lambda_client = FakeCodeDeploy(), HandlerLambda({"/health": health})

    assert run(codedeploy, lambda_client) == "Failed"
    assert [call[3] for call in lambda_client.calls] == ["/health"]  # no flag read after a failed check


def test_a_degraded_version_passes_only_when_degraded_is_accepted(fake_service: FlagService) -> None:
    degraded = answer(200, {"status": "degraded", "cache": "unavailable", "database": "ok"})
    bypass = answer(404, {"errorCode": "FLAG_NOT_FOUND", "errorDetails": "no such flag"}, {"X-Cache": "BYPASS"})
    scripted = {"/health": degraded, "/flags/canary-probe": bypass}

    assert run(FakeCodeDeploy(), HandlerLambda(scripted)) == "Failed"
    assert run(FakeCodeDeploy(), HandlerLambda(scripted), ACCEPT_DEGRADED="true") == "Succeeded"


@pytest.mark.parametrize(
    "read",
    [
        answer(503, {"errorCode": "SERVICE_UNAVAILABLE", "errorDetails": "database down"}, {"X-Cache": "MISS"}),
        answer(500, {"errorCode": "GENERAL", "errorDetails": "internal error"}),
        answer(404, {"errorCode": "NOT_FOUND", "errorDetails": "no such route"}, {"X-Cache": "MISS"}),
        answer(200, {"key": "canary-probe", "enabled": True}),  # no X-Cache: not the read path
    ],
)
def test_a_broken_flag_read_fails_the_deployment(fake_service: FlagService, read: dict[str, Any]) -> None:
    assert run(FakeCodeDeploy(), HandlerLambda({"/flags/canary-probe": read})) == "Failed"


def test_a_deployment_of_another_function_is_failed_without_invoking_anything(fake_service: FlagService) -> None:
    lambda_client = HandlerLambda()

    assert run(FakeCodeDeploy(appspec(name="someone-elses-function")), lambda_client) == "Failed"
    assert lambda_client.calls == []


def test_a_failure_to_read_the_deployment_is_still_reported(fake_service: FlagService) -> None:
    codedeploy = FakeCodeDeploy(broken=True)

    assert run(codedeploy, HandlerLambda()) == "Failed"
    assert len(codedeploy.reports) == 1


def test_missing_settings_are_reported_as_failed_rather_than_left_hanging() -> None:
    codedeploy = FakeCodeDeploy()

    status = canary_hook.run(EVENT, codedeploy=codedeploy, lambda_client=HandlerLambda(), environ={})

    assert status == "Failed" and codedeploy.reports[0]["status"] == "Failed"


def test_the_target_version_is_read_from_a_yaml_appspec_too() -> None:
    content = (
        "version: 0.0\nResources:\n  - flags:\n      Type: AWS::Lambda::Function\n      Properties:\n"
        f"        Name: {FUNCTION}\n        Alias: live\n        CurrentVersion: '6'\n        TargetVersion: '12'\n"
    )
    deployment = FakeCodeDeploy(content).get_deployment(deploymentId="d-1")

    assert canary_hook.target_of(deployment) == canary_hook.Target(FUNCTION, "12")


def test_a_function_arn_in_the_appspec_names_the_same_function() -> None:
    arn = f"arn:aws:lambda:eu-central-1:123456789012:function:{FUNCTION}"

    assert canary_hook.bare_name(arn) == canary_hook.bare_name(f"{arn}:live") == FUNCTION


def test_the_probe_events_look_like_the_catch_all_proxy_resource() -> None:
    event = canary_hook.proxy_event("GET", "/flags/canary-probe")

    assert event["resource"] == "/{proxy+}" and event["pathParameters"] == {"proxy": "flags/canary-probe"}
    assert event["requestContext"]["identity"]["userArn"] is None  # a read: no IAM caller
    assert event["headers"]["X-Request-Id"] == event["requestContext"]["requestId"]
