"""Drive the Lambda handler with API Gateway REST proxy events, as API Gateway and the local server do."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def make_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    raw: bytes | None = None,
    user_arn: str | None = None,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A REST proxy event; `body` is JSON-encoded unless it is a str, `raw` bytes go base64."""
    if raw is not None:
        text, encoded = base64.b64encode(raw).decode(), True
    elif body is None or isinstance(body, str):
        text, encoded = body, False
    else:
        text, encoded = json.dumps(body), False
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "body": text,
        "isBase64Encoded": encoded,
        "requestContext": {
            "requestId": "test-request",
            "stage": "test",
            "identity": {"sourceIp": "127.0.0.1", "userArn": user_arn, **(identity or {})},
        },
    }


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(method: str, path: str, **kwargs: Any) -> Answer:
    """Send one event through `flagservice.handler.lambda_handler` and return its answer."""
    from flagservice.handler import lambda_handler

    result = lambda_handler(make_event(method, path, **kwargs), None)
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ", ".join(values)
    return Answer(result["statusCode"], headers, result.get("body") or "")
