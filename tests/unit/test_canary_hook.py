"""The CodeDeploy pre-traffic hook (stacks/hooks/canary_hook.py) against AWS's published API model.

boto3 clients with botocore's Stubber: every request the hook makes and every response it reads is
validated against the CodeDeploy and Lambda service models that botocore ships (moto has no
GetApplicationRevision or PutLifecycleEventHookExecutionStatus, and its Lambda invoke needs Docker).
GetDeployment, which moto implements, is also run against moto at the end. Where the hook invokes "the
new version", the payload is the real handler's answer (on the in-memory service) to the hook's own
probe event, so the events the hook sends are events the handler answers.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from flagservice.flags.model import FlagDefinition
from flagservice.handler import lambda_handler
from flagservice.service import FlagService
from stacks.hooks import canary_hook
from tests.moto_aws import REGION, aws  # noqa: F401 - fixture

FUNCTION = "FlagsService-prod-FlagFunctionHandler-abc123"
APPLICATION = "FlagsService-prod-CanaryDeploymentGroupApplication-xyz"
ENVIRON = {"TARGET_FUNCTION_NAME": FUNCTION, "TARGET_VERSION": "7", "PROBE_FLAG_KEY": "canary-probe"}
EVENT = {"DeploymentId": "d-TEST12345", "LifecycleEventHookExecutionId": "hook-execution-1"}
SHA = "0" * 64


def appspec(name: str = FUNCTION, version: str = "7") -> str:
    properties = {"Name": name, "Alias": "live", "CurrentVersion": "6", "TargetVersion": version}
    return json.dumps(
        {"version": 0.0, "Resources": [{"flags": {"Type": "AWS::Lambda::Function", "Properties": properties}}]}
    )


def answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers or {}, "body": json.dumps(body)}


def handler_answer(path: str) -> dict[str, Any]:
    """What the real handler answers to the hook's probe event for `path`."""
    result: dict[str, Any] = lambda_handler(canary_hook.proxy_event("GET", path), None)
    return result


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Aws:
    """CodeDeploy and Lambda clients whose calls must come in the order queued, each checked by the model."""

    def __init__(self) -> None:
        keys = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.codedeploy = boto3.client("codedeploy", **keys)
        self.lambda_client = boto3.client("lambda", **keys)
        self.codedeploy_stub = Stubber(self.codedeploy)
        self.lambda_stub = Stubber(self.lambda_client)
        self.clock = FakeClock()

    def record(self, content: str | None = None) -> None:
        """GetDeployment, then GetApplicationRevision answering with `content` as the AppSpec."""
        revision = {"revisionType": "AppSpecContent", "appSpecContent": {"sha256": SHA}}
        deployment = {
            "applicationName": APPLICATION,
            "deploymentGroupName": "flags",
            "deploymentId": EVENT["DeploymentId"],
            "revision": revision,
            "computePlatform": "Lambda",
        }
        self.codedeploy_stub.add_response(
            "get_deployment", {"deploymentInfo": deployment}, {"deploymentId": EVENT["DeploymentId"]}
        )
        stored = {"revisionType": "AppSpecContent", "appSpecContent": {"content": content or appspec(), "sha256": SHA}}
        self.codedeploy_stub.add_response(
            "get_application_revision",
            {"applicationName": APPLICATION, "revision": stored},
            {"applicationName": APPLICATION, "revision": revision},
        )

    def record_unreadable(self, code: str = "AccessDeniedException") -> None:
        self.codedeploy_stub.add_client_error("get_deployment", service_error_code=code, http_status_code=400)

    def invoked(self, path: str, result: dict[str, Any] | None = None, *, version: str = "7") -> None:
        """Lambda answers an invocation of `version` (the handler's own answer unless `result` is given)."""
        payload = json.dumps(result if result is not None else handler_answer(path)).encode()
        response = {
            "StatusCode": 200,
            "ExecutedVersion": version,
            "Payload": StreamingBody(io.BytesIO(payload), len(payload)),
        }
        self.lambda_stub.add_response("invoke", response, self._invocation(version))

    def invoke_fails(self, error: dict[str, str], *, version: str = "7") -> None:
        payload = json.dumps(error).encode()
        response = {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": StreamingBody(io.BytesIO(payload), len(payload)),
        }
        self.lambda_stub.add_response("invoke", response, self._invocation(version))

    def invoke_denied(self, times: int = 1) -> None:
        for _ in range(times):
            self.lambda_stub.add_client_error(
                "invoke",
                service_error_code="AccessDeniedException",
                http_status_code=403,
                expected_params=self._invocation("7"),
            )

    def reported(self, status: str) -> None:
        expected = {
            "deploymentId": EVENT["DeploymentId"],
            "lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"],
            "status": status,
        }
        self.codedeploy_stub.add_response(
            "put_lifecycle_event_hook_execution_status",
            {"lifecycleEventHookExecutionId": EVENT["LifecycleEventHookExecutionId"]},
            expected,
        )

    def run(self, environ: dict[str, str] | None = None) -> str:
        """Run the hook; a call the Stubber did not expect (which the hook reports as Failed) fails the test."""
        patience = canary_hook.Patience(clock=self.clock, sleep=self.clock.sleep)
        printed = io.StringIO()
        with self.codedeploy_stub, self.lambda_stub, contextlib.redirect_stdout(printed):
            status = canary_hook.run(
                EVENT,
                codedeploy=self.codedeploy,
                lambda_client=self.lambda_client,
                environ=ENVIRON if environ is None else environ,
                patience=patience,
            )
            self.codedeploy_stub.assert_no_pending_responses()
            self.lambda_stub.assert_no_pending_responses()
        self.checks = json.loads(printed.getvalue())["checks"]
        assert not [note for note in self.checks if "Stub" in note or "ParamValidation" in note], self.checks
        return status

    @staticmethod
    def _invocation(version: str) -> dict[str, Any]:
        return {"FunctionName": FUNCTION, "Qualifier": version, "InvocationType": "RequestResponse", "Payload": ANY}


@pytest.fixture
def stubbed(fake_service: FlagService) -> Iterator[Aws]:
    yield Aws()


def test_a_healthy_version_is_checked_with_health_and_a_flag_read_then_reported_succeeded(stubbed: Aws) -> None:
    stubbed.record()
    stubbed.invoked("/health")
    stubbed.invoked("/flags/canary-probe")
    stubbed.reported("Succeeded")

    assert stubbed.run() == "Succeeded"


def test_an_existing_probe_flag_passes_too(stubbed: Aws, fake_service: FlagService) -> None:
    fake_service.put_flag(
        FlagDefinition.model_validate({"key": "canary-probe", "enabled": True}), actor="test", if_match=None
    )
    stubbed.record()
    stubbed.invoked("/health")
    stubbed.invoked("/flags/canary-probe")
    stubbed.reported("Succeeded")

    assert stubbed.run() == "Succeeded"


def test_the_version_codedeploy_records_wins_over_the_one_the_stack_published(stubbed: Aws) -> None:
    stubbed.record(appspec(version="6"))  # a redeploy or a rollback of an older version
    stubbed.invoked("/health", version="6")
    stubbed.invoked("/flags/canary-probe", version="6")
    stubbed.reported("Succeeded")

    assert stubbed.run() == "Succeeded"


@pytest.mark.parametrize("code", ["AccessDeniedException", "DeploymentDoesNotExistException", "ThrottlingException"])
def test_an_unreadable_record_falls_back_to_the_version_the_stack_published(stubbed: Aws, code: str) -> None:
    stubbed.record_unreadable(code)
    stubbed.invoked("/health")
    stubbed.invoked("/flags/canary-probe")
    stubbed.reported("Succeeded")

    assert stubbed.run() == "Succeeded"


def test_a_record_without_an_appspec_falls_back_to_the_version_the_stack_published(stubbed: Aws) -> None:
    stubbed.record("not an appspec at all")
    stubbed.invoked("/health")
    stubbed.invoked("/flags/canary-probe")
    stubbed.reported("Succeeded")

    assert stubbed.run() == "Succeeded"


def test_with_neither_a_record_nor_a_published_version_the_deployment_fails_without_invoking(stubbed: Aws) -> None:
    stubbed.record_unreadable()
    stubbed.reported("Failed")

    assert stubbed.run({k: v for k, v in ENVIRON.items() if k != "TARGET_VERSION"}) == "Failed"


def test_a_deployment_of_another_function_fails_without_invoking_anything(stubbed: Aws) -> None:
    stubbed.record(appspec(name="someone-elses-function"))
    stubbed.reported("Failed")

    assert stubbed.run() == "Failed"


def test_an_invoke_denied_while_iam_propagates_is_retried(stubbed: Aws) -> None:
    stubbed.record()
    stubbed.invoke_denied(times=3)
    stubbed.invoked("/health")
    stubbed.invoked("/flags/canary-probe")
    stubbed.reported("Succeeded")

    assert stubbed.run() == "Succeeded"
    assert stubbed.clock.sleeps == [2.0, 2.0, 2.0]


def test_an_invoke_still_denied_after_about_30_seconds_fails_the_deployment(stubbed: Aws) -> None:
    stubbed.record()
    stubbed.invoke_denied(times=16)  # the first try at 0 s, then one every 2 s up to 30 s
    stubbed.reported("Failed")

    assert stubbed.run() == "Failed"
    assert sum(stubbed.clock.sleeps) == 30.0


def test_a_report_denied_while_iam_propagates_is_retried(stubbed: Aws) -> None:
    stubbed.record()
    stubbed.invoked("/health")
    stubbed.invoked("/flags/canary-probe")
    stubbed.codedeploy_stub.add_client_error(
        "put_lifecycle_event_hook_execution_status", service_error_code="AccessDeniedException", http_status_code=400
    )
    stubbed.reported("Succeeded")

    assert stubbed.run() == "Succeeded"


def test_a_function_error_fails_the_deployment(stubbed: Aws) -> None:
    stubbed.record()
    stubbed.invoke_fails({"errorMessage": "Task timed out after 10.00 seconds"})
    stubbed.reported("Failed")

    assert stubbed.run() == "Failed"


@pytest.mark.parametrize(
    "health",
    [
        answer(503, {"status": "degraded", "cache": "unavailable", "database": "unavailable"}),
        answer(200, {"status": "degraded", "cache": "unavailable", "database": "ok"}),
        answer(500, {"errorCode": "GENERAL", "errorDetails": "the service is misconfigured"}),
        {"statusCode": 200, "headers": {}, "body": "<html>"},
    ],
)
def test_an_unhealthy_version_fails_before_any_flag_read(stubbed: Aws, health: dict[str, Any]) -> None:
    stubbed.record()
    stubbed.invoked("/health", health)  # no flag read is queued: the Stubber refuses one
    stubbed.reported("Failed")

    assert stubbed.run() == "Failed"


def test_a_degraded_version_passes_only_when_degraded_is_accepted(stubbed: Aws) -> None:
    degraded = answer(200, {"status": "degraded", "cache": "unavailable", "database": "ok"})
    bypass = answer(404, {"errorCode": "FLAG_NOT_FOUND", "errorDetails": "no such flag"}, {"X-Cache": "BYPASS"})
    stubbed.record()
    stubbed.invoked("/health", degraded)
    stubbed.reported("Failed")
    assert stubbed.run() == "Failed"

    again = Aws()
    again.record()
    again.invoked("/health", degraded)
    again.invoked("/flags/canary-probe", bypass)
    again.reported("Succeeded")
    assert again.run({**ENVIRON, "ACCEPT_DEGRADED": "true"}) == "Succeeded"


@pytest.mark.parametrize(
    "read",
    [
        answer(503, {"errorCode": "SERVICE_UNAVAILABLE", "errorDetails": "database down"}, {"X-Cache": "MISS"}),
        answer(500, {"errorCode": "GENERAL", "errorDetails": "internal error"}),
        answer(404, {"errorCode": "NOT_FOUND", "errorDetails": "no such route"}, {"X-Cache": "MISS"}),
        answer(200, {"key": "canary-probe", "enabled": True}),  # no X-Cache: not the read path
    ],
)
def test_a_broken_flag_read_fails_the_deployment(stubbed: Aws, read: dict[str, Any]) -> None:
    stubbed.record()
    stubbed.invoked("/health")
    stubbed.invoked("/flags/canary-probe", read)
    stubbed.reported("Failed")

    assert stubbed.run() == "Failed"


def test_missing_settings_are_reported_as_failed_rather_than_left_hanging(stubbed: Aws) -> None:
    stubbed.reported("Failed")

    assert stubbed.run(environ={}) == "Failed"


def test_the_target_version_is_read_from_a_yaml_appspec_too() -> None:
    content = (
        "version: 0.0\nResources:\n  - flags:\n      Type: AWS::Lambda::Function\n      Properties:\n"
        f"        Name: {FUNCTION}\n        Alias: live\n        CurrentVersion: '6'\n        TargetVersion: '12'\n"
    )

    assert canary_hook.target_in_appspec(content) == canary_hook.Target(FUNCTION, "12")


def test_a_function_arn_in_the_appspec_names_the_same_function() -> None:
    arn = f"arn:aws:lambda:eu-central-1:123456789012:function:{FUNCTION}"

    assert canary_hook.bare_name(arn) == canary_hook.bare_name(f"{arn}:live") == FUNCTION


def test_the_probe_events_look_like_the_catch_all_proxy_resource() -> None:
    event = canary_hook.proxy_event("GET", "/flags/canary-probe")

    assert event["resource"] == "/{proxy+}" and event["pathParameters"] == {"proxy": "flags/canary-probe"}
    assert event["requestContext"]["identity"]["userArn"] is None  # a read: no IAM caller
    assert event["headers"]["X-Request-Id"] == event["requestContext"]["requestId"]


@pytest.mark.usefixtures("aws")
def test_get_deployment_on_moto_names_the_application_and_revision_the_hook_passes_on() -> None:
    codedeploy: Any = boto3.client("codedeploy", region_name=REGION)
    codedeploy.create_application(applicationName=APPLICATION, computePlatform="Lambda")
    role = "arn:aws:iam::123456789012:role/codedeploy"
    codedeploy.create_deployment_group(applicationName=APPLICATION, deploymentGroupName="flags", serviceRoleArn=role)
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": appspec(version="9"), "sha256": SHA}}
    deployment_id = codedeploy.create_deployment(
        applicationName=APPLICATION, deploymentGroupName="flags", revision=revision
    )["deploymentId"]

    application, recorded = canary_hook.deployment_revision(codedeploy, deployment_id)

    assert application == APPLICATION and recorded["revisionType"] == "AppSpecContent"
    # moto stops here (GetApplicationRevision raises NotImplementedError): the hook then checks the version
    # the stack published, as it would if AWS refused or changed the call.
    settings = canary_hook.Settings.from_environment(ENVIRON)
    target, source = canary_hook.find_target(codedeploy, deployment_id, settings)
    assert (target, source) == (canary_hook.Target(FUNCTION, "7"), "TARGET_VERSION (NotImplementedError)")
