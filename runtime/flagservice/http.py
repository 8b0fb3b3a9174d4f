"""HTTP details shared by the route modules: bodies, headers, query parameters, JSON answers."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from flagservice.errors import ParseError, PayloadTooLargeError
from flagservice.ports import CacheOutcome, IfMatch

MAX_BODY_BYTES = 32 * 1024
MAX_NESTING = 64
JSON = "application/json"
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _object_without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The stdlib keeps the last of repeated keys; another reader may keep the first: refuse the ambiguity.
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ParseError("a key is repeated in one JSON object")
    return found


def _refuse_hostile_values(document: Any, *, escapes: bool) -> None:
    """Nesting deeper than MAX_NESTING, numbers that overflowed to infinity, lone surrogates.

    Iterative, so no depth can exhaust the stack. A lone surrogate can only come from a `\\u` escape
    (UTF-8 cannot encode one), so strings are searched only when the text has an escape.
    """
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ParseError("a number overflows to infinity")
        if escapes and isinstance(value, str) and _SURROGATE.search(value):
            raise ParseError("a string holds a lone surrogate escape")
        if isinstance(value, (dict, list)):
            if depth > MAX_NESTING:
                raise ParseError(f"JSON nests deeper than {MAX_NESTING}")
            children = [*value, *value.values()] if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)


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
    """The body as a JSON object, or ParseError: not UTF-8, not JSON, not an object, or any other
    PARSE_ERROR case of CONTRACT.md section 2 (repeated keys, lone surrogates, infinity, deep nesting)."""
    try:
        text = body_bytes(event).decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("the body is not UTF-8") from None
    try:
        parsed = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_object_without_repeats)
    except RecursionError:
        raise ParseError(f"JSON nests deeper than {MAX_NESTING}") from None
    except ValueError:
        raise ParseError("the body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ParseError("the body must be a JSON object")
    _refuse_hostile_values(parsed, escapes="\\u" in text)
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
        # An echoed path key may hold a lone surrogate, which no UTF-8 answer can carry.
        body["key"] = key.encode("utf-8", "replace").decode("utf-8")
    return body
