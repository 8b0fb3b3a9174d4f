"""Small helpers around the Lambda event and context that the handler needs."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass
class LocalContext:
    """The one stand-in for the Lambda context, when the local server (or a test) calls the handler:
    what the runtime passes, with the deadline of an API Gateway integration (29 s)."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "flagservice-local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:flagservice-local"
    memory_limit_in_mb: int = 1024
    log_group_name: str = "/aws/lambda/flagservice-local"
    log_stream_name: str = "local"
    deadline: float = field(default_factory=lambda: time.monotonic() + 29.0)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def request_id(event: dict[str, Any]) -> str:
    """The caller's X-Request-Id if it sent one, else API Gateway's request id."""
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    given = headers.get("x-request-id")
    if isinstance(given, str) and 0 < len(given) <= 200 and given.isprintable():
        return given
    context_id = (event.get("requestContext") or {}).get("requestId")
    return str(context_id) if context_id else str(uuid.uuid4())


def allowed_methods(app: APIGatewayRestResolver, path: str) -> list[str]:
    """The methods of the routes whose path matches: non-empty means 405, empty means 404."""
    routes = app._static_routes + app._dynamic_routes  # noqa: SLF001 - the resolver has no public route table
    found = {route.method for route in routes if route.rule.match(path)}
    return [method for method in METHOD_ORDER if method in found]
