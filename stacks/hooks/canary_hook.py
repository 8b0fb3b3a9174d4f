"""CodeDeploy BeforeAllowTraffic hook: proves the new flag function version answers before it takes traffic.

Deployed on its own (this folder is the whole asset; boto3 comes with Lambda's Python runtime), outside
the VPC so it can reach CodeDeploy. CodeDeploy calls it with a deployment id and a hook execution id. It
finds the version the deployment shifts traffic to, invokes that version directly (the alias still
points at the old one) with API Gateway proxy events for `GET /health` and one flag read, and reports
Succeeded or Failed. It always reports: a hook that never answers holds the deployment for an hour. A
Failed report stops the deployment and CodeDeploy rolls the alias back.

The target version, without guessing at response shapes: CodeDeploy's documented record first
(GetDeployment names the application and revision; GetApplicationRevision returns that revision's
AppSpec), so a deployment CodeDeploy runs for another reason (a redeploy, a rollback) is checked against
the version it really targets; when that record cannot be read or parsed, the version the stack itself
published (TARGET_VERSION, set by the stack on every release).

Permissions to invoke may still be propagating when CodeDeploy calls (IAM is eventually consistent): an
AccessDenied invoke is retried for about 30 s before it counts as a failure.

Settings (environment): TARGET_FUNCTION_NAME (the only function it may test), TARGET_VERSION (the version
the stack published), PROBE_FLAG_KEY (read through the cache; a missing flag is fine, it still proves the
read path), ACCEPT_DEGRADED ("true" lets a deploy through while a store is down; default false).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HEALTHY = {"ok"}
DEGRADED_TOO = {"ok", "degraded"}
CACHED = {"HIT", "MISS"}
ANY_SOURCE = {"HIT", "MISS", "BYPASS", "STALE"}
ACCESS_DENIED_PATIENCE_SECONDS = 30.0


class CanaryCheckError(Exception):
    """The new version answered, but not as a healthy deployment must."""


@dataclass(frozen=True)
class Target:
    function_name: str
    version: str


@dataclass(frozen=True)
class Settings:
    function_name: str
    target_version: str | None
    probe_flag_key: str
    accept_degraded: bool

    @classmethod
    def from_environment(cls, environ: dict[str, str]) -> Settings:
        return cls(
            function_name=environ["TARGET_FUNCTION_NAME"],
            target_version=environ.get("TARGET_VERSION") or None,
            probe_flag_key=environ.get("PROBE_FLAG_KEY", "canary-probe"),
            accept_degraded=environ.get("ACCEPT_DEGRADED", "false").lower() == "true",
        )


@dataclass(frozen=True)
class Patience:
    """How long AccessDenied is retried (IAM propagation), and the clock and sleep it is measured with."""

    seconds: float = ACCESS_DENIED_PATIENCE_SECONDS
    pause: float = 2.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def proxy_event(method: str, path: str) -> dict[str, Any]:
    """An API Gateway REST proxy event, shaped as the catch-all `{proxy+}` resource delivers it."""
    request_id = f"canary-{uuid.uuid4()}"
    headers = {"Accept": "application/json", "X-Request-Id": request_id, "User-Agent": "flagservice-canary"}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": request_id,
            "stage": "canary",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": path,
            "identity": {"sourceIp": "127.0.0.1", "userArn": None, "userAgent": "flagservice-canary"},
        },
    }


def target_in_appspec(content: str) -> Target:
    """The function and version an AppSpec (JSON or YAML) shifts traffic to."""
    try:
        resources = json.loads(content)["Resources"]
        properties = next(iter(resources[0].values()))["Properties"]
        return Target(str(properties["Name"]), str(properties["TargetVersion"]))
    except ValueError:
        name = re.search(r"^\s*Name:\s*['\"]?([^'\"\s]+)", content, re.MULTILINE)
        version = re.search(r"^\s*TargetVersion:\s*['\"]?([^'\"\s]+)", content, re.MULTILINE)
        if not name or not version:
            raise CanaryCheckError("the deployment's AppSpec names no target version") from None
        return Target(name.group(1), version.group(1))


def deployment_revision(codedeploy: Any, deployment_id: str) -> tuple[str, dict[str, Any]]:
    """GetDeployment: the application and the revision (its location, not its content) being deployed."""
    info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    return str(info["applicationName"]), dict(info["revision"])


def recorded_target(codedeploy: Any, deployment_id: str) -> Target:
    """The target in CodeDeploy's record: GetApplicationRevision returns the revision's AppSpec."""
    application, revision = deployment_revision(codedeploy, deployment_id)
    answer = codedeploy.get_application_revision(applicationName=application, revision=revision)
    return target_in_appspec(answer["revision"]["appSpecContent"]["content"])


def find_target(codedeploy: Any, deployment_id: str, settings: Settings) -> tuple[Target, str]:
    """The version to check and where it was learnt; CodeDeploy's record, else what the stack published."""
    try:
        return recorded_target(codedeploy, deployment_id), "CodeDeploy"
    except Exception as exc:  # noqa: BLE001 - any failure to read the record falls back to the stack's version
        if settings.target_version is None:
            raise CanaryCheckError(f"no target version: {type(exc).__name__}: {exc}") from exc
        return Target(settings.function_name, settings.target_version), f"TARGET_VERSION ({type(exc).__name__})"


def access_denied(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")).startswith("AccessDenied")


def patiently(call: Callable[[], Any], patience: Patience) -> Any:
    """`call()`, retried while it raises AccessDenied, until `patience.seconds` have passed."""
    deadline = patience.clock() + patience.seconds
    while True:
        try:
            return call()
        except Exception as exc:
            if not access_denied(exc) or patience.clock() + patience.pause > deadline:
                raise
            patience.sleep(patience.pause)


def invoke(
    lambda_client: Any, target: Target, event: dict[str, Any], patience: Patience = Patience()
) -> tuple[int, dict[str, str], Any]:
    """One synchronous invocation of the target version: (status, lower-cased headers, parsed body)."""
    answer = patiently(
        lambda: lambda_client.invoke(
            FunctionName=target.function_name,
            Qualifier=target.version,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        ),
        patience,
    )
    payload = answer["Payload"].read()
    if answer.get("FunctionError"):
        raise CanaryCheckError(f"{event['path']}: the function failed ({payload[:300]!r})")
    result = json.loads(payload)
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ", ".join(str(v) for v in values)
    try:
        body = json.loads(result.get("body") or "null")
    except ValueError:
        raise CanaryCheckError(f"{event['path']}: the body is not JSON") from None
    return int(result["statusCode"]), headers, body


def check_health(lambda_client: Any, target: Target, settings: Settings, patience: Patience) -> str:
    status, _, body = invoke(lambda_client, target, proxy_event("GET", "/health"), patience)
    accepted = DEGRADED_TOO if settings.accept_degraded else HEALTHY
    if status != 200 or not isinstance(body, dict) or body.get("status") not in accepted:
        raise CanaryCheckError(f"/health answered {status} {body}")
    return f"/health {status} {body.get('status')} (cache {body.get('cache')}, database {body.get('database')})"


def check_flag_read(lambda_client: Any, target: Target, settings: Settings, patience: Patience) -> str:
    """A 200, or a 404 FLAG_NOT_FOUND for a probe key nobody created: either way cache and database answered."""
    path = f"/flags/{settings.probe_flag_key}"
    status, headers, body = invoke(lambda_client, target, proxy_event("GET", path), patience)
    source = headers.get("x-cache", "")
    found = status == 200 and isinstance(body, dict) and body.get("key") == settings.probe_flag_key
    missing = status == 404 and isinstance(body, dict) and body.get("errorCode") == "FLAG_NOT_FOUND"
    accepted = ANY_SOURCE if settings.accept_degraded else CACHED
    if not (found or missing) or source not in accepted:
        raise CanaryCheckError(f"{path} answered {status} X-Cache={source or '-'} {str(body)[:300]}")
    return f"{path} {status} X-Cache={source}"


def bare_name(function: str) -> str:
    """`name` from a function name or an (optionally qualified) function ARN."""
    return function.split(":")[6] if function.startswith("arn:") else function


def run(
    event: dict[str, Any],
    *,
    codedeploy: Any,
    lambda_client: Any,
    environ: dict[str, str],
    patience: Patience = Patience(),
) -> str:
    """Check the target version and report to CodeDeploy; returns the status reported."""
    status, notes = "Succeeded", []
    try:
        settings = Settings.from_environment(environ)
        target, source = find_target(codedeploy, event["DeploymentId"], settings)
        notes.append(f"target {target.function_name}:{target.version} from {source}")
        if bare_name(target.function_name) != bare_name(settings.function_name):
            raise CanaryCheckError(f"the deployment targets {target.function_name}, not {settings.function_name}")
        for check in (check_health, check_flag_read):
            notes.append(check(lambda_client, target, settings, patience))
    except Exception as exc:  # noqa: BLE001 - any failure must become a Failed report, never silence
        status = "Failed"
        notes.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"message": "canary checks", "status": status, "checks": notes}))
    report(codedeploy, event, status, patience)
    return status


def report(codedeploy: Any, event: dict[str, Any], status: str, patience: Patience) -> None:
    """PutLifecycleEventHookExecutionStatus: the one call that must always happen."""
    patiently(
        lambda: codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=event["DeploymentId"],
            lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
            status=status,
        ),
        patience,
    )


_clients: dict[str, Any] = {}


def _client(name: str) -> Any:
    if name not in _clients:
        import boto3

        _clients[name] = boto3.client(name)
    return _clients[name]


def handler(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    status = run(
        event,
        codedeploy=_client("codedeploy"),
        lambda_client=_client("lambda"),
        environ=dict(os.environ),
    )
    return {"status": status}
