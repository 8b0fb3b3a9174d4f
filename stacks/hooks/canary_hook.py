"""CodeDeploy BeforeAllowTraffic hook: proves the new flag function version answers before it takes traffic.

Deployed on its own (this folder is the whole asset; boto3 comes with Lambda's Python runtime), outside
the VPC so it can reach CodeDeploy. CodeDeploy calls it with a deployment id and a hook execution id; it
reads the deployment's AppSpec to learn the target version, invokes that version directly (the alias
still points at the old one) with API Gateway proxy events for `GET /health` and one flag read, and
reports Succeeded or Failed. It always reports: a hook that never answers holds the deployment for an
hour. A Failed report stops the deployment and CodeDeploy rolls the alias back.

Settings (environment): TARGET_FUNCTION_NAME (the only function it may test), PROBE_FLAG_KEY (read
through the cache; a missing flag is fine, it still proves the read path), ACCEPT_DEGRADED ("true" lets a
deploy through while a store is down; default false).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

HEALTHY = {"ok"}
DEGRADED_TOO = {"ok", "degraded"}
CACHED = {"HIT", "MISS"}
ANY_SOURCE = {"HIT", "MISS", "BYPASS", "STALE"}


class CanaryCheckError(Exception):
    """The new version answered, but not as a healthy deployment must."""


@dataclass(frozen=True)
class Target:
    function_name: str
    version: str


@dataclass(frozen=True)
class Settings:
    function_name: str
    probe_flag_key: str
    accept_degraded: bool

    @classmethod
    def from_environment(cls, environ: dict[str, str]) -> Settings:
        return cls(
            function_name=environ["TARGET_FUNCTION_NAME"],
            probe_flag_key=environ.get("PROBE_FLAG_KEY", "canary-probe"),
            accept_degraded=environ.get("ACCEPT_DEGRADED", "false").lower() == "true",
        )


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


def target_of(deployment: dict[str, Any]) -> Target:
    """The function and version the deployment shifts traffic to, from its AppSpec (JSON or YAML)."""
    content = deployment["deploymentInfo"]["revision"]["appSpecContent"]["content"]
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


def invoke(lambda_client: Any, target: Target, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """One synchronous invocation of the target version: (status, lower-cased headers, parsed body)."""
    answer = lambda_client.invoke(
        FunctionName=target.function_name,
        Qualifier=target.version,
        InvocationType="RequestResponse",
        Payload=json.dumps(event).encode(),
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


def check_health(lambda_client: Any, target: Target, settings: Settings) -> str:
    status, _, body = invoke(lambda_client, target, proxy_event("GET", "/health"))
    accepted = DEGRADED_TOO if settings.accept_degraded else HEALTHY
    if status != 200 or not isinstance(body, dict) or body.get("status") not in accepted:
        raise CanaryCheckError(f"/health answered {status} {body}")
    return f"/health {status} {body.get('status')} (cache {body.get('cache')}, database {body.get('database')})"


def check_flag_read(lambda_client: Any, target: Target, settings: Settings) -> str:
    """A 200, or a 404 FLAG_NOT_FOUND for a probe key nobody created: either way cache and database answered."""
    path = f"/flags/{settings.probe_flag_key}"
    status, headers, body = invoke(lambda_client, target, proxy_event("GET", path))
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


def run(event: dict[str, Any], *, codedeploy: Any, lambda_client: Any, environ: dict[str, str]) -> str:
    """Check the target version and report to CodeDeploy; returns the status reported."""
    status, notes = "Succeeded", []
    try:
        settings = Settings.from_environment(environ)
        target = target_of(codedeploy.get_deployment(deploymentId=event["DeploymentId"]))
        if bare_name(target.function_name) != bare_name(settings.function_name):
            raise CanaryCheckError(f"the deployment targets {target.function_name}, not {settings.function_name}")
        for check in (check_health, check_flag_read):
            notes.append(check(lambda_client, target, settings))
    except Exception as exc:  # noqa: BLE001 - any failure must become a Failed report, never silence
        status = "Failed"
        notes.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"message": "canary checks", "status": status, "checks": notes}))
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status=status,
    )
    return status


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
