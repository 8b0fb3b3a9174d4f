"""HTTP details shared by the route modules: bodies, headers, query parameters, JSON answers."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from flagservice.errors import ParseError, PayloadTooLargeError
from flagservice.ports import CacheOutcome, IfMatch

MAX_BODY_BYTES = 32 * 1024
JSON = "application/json"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def body_bytes(event: APIGatewayProxyEvent) -> bytes:
    """The raw request body, size-checked before anything parses it."""
    raw = event.body or ""
    if event.is_base64_encoded:
        if len(raw) > (MAX_BODY_BYTES * 4) // 3 + 8:
            raise PayloadTooLargeError(f"a body is at most {MAX_BODY_BYTES} bytes")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise ParseError("the body is not valid base64") from None
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"a body is at most {MAX_BODY_BYTES} bytes")
    return data


def json_object(event: APIGatewayProxyEvent) -> dict[str, Any]:
    """The body as a JSON object, or ParseError (not UTF-8, not JSON, not an object)."""
    data = body_bytes(event)
    try:
        parsed = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ParseError("the body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise ParseError("the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ParseError("the body must be a JSON object")
    return parsed


def if_match(event: APIGatewayProxyEvent) -> IfMatch:
    """`If-Match` as `*` or a comma-separated list of `"N"` / `N` validators.

    RFC 9110 strong comparison: a weak validator (`W/"N"`) or anything unparseable matches no version
    (an empty set: 412 once the flag is known to exist, 404 before that).
    """
    value = event.headers.get("if-match")
    if value is None:
        return None
    if value.strip() == "*":
        return "*"
    return frozenset(version for part in value.split(",") if (version := _strong_version(part.strip())) is not None)


def _strong_version(validator: str) -> int | None:
    digits = validator[1:-1] if len(validator) >= 2 and validator[0] == validator[-1] == '"' else validator
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        return None
    return int(digits)


def query_int(event: APIGatewayProxyEvent, name: str, *, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high], or ParseError."""
    value = (event.query_string_parameters or {}).get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise ParseError(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def query_str(event: APIGatewayProxyEvent, name: str) -> str | None:
    return (event.query_string_parameters or {}).get(name)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=JSON,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        headers=headers or {},
    )


def read_headers(outcome: CacheOutcome, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Cache-Control, X-Cache and, for degraded answers, X-Flags-Degraded."""
    headers = {"Cache-Control": "no-store", "X-Cache": outcome.value}
    if outcome.degraded:
        headers["X-Flags-Degraded"] = "true"
    return {**headers, **(extra or {})}


def error_body(code: str, detail: str, key: str | None = None) -> dict[str, str]:
    body = {"errorCode": code, "errorDetails": detail}
    if key is not None:
        body["key"] = key
    return body
