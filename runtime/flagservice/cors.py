"""CORS for browser clients on the read, OFREP and event routes (CONTRACT.md section 5).

Every answer of those routes, 304 and errors included, names the allowed origin and exposes the
headers a client reads; a preflight is answered here, before routing and without credentials (deployed,
API Gateway lets OPTIONS through without an API key). Admin routes get no CORS headers: the console is
served from the service's own origin.
"""

from __future__ import annotations

from typing import Any

from flagservice.settings import SettingsError, get_settings

PUBLIC_PREFIXES = ("/flags", "/ofrep/", "/events", "/health")
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, If-None-Match, X-API-Key"
EXPOSE_HEADERS = "ETag, Retry-After, X-Cache, X-Flags-Degraded, X-Request-Id"


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def allowed_origin(event: dict[str, Any]) -> str | None:
    """The Access-Control-Allow-Origin value for this request, or None (no CORS headers)."""
    path = str(event.get("path") or "")
    if not path.startswith(PUBLIC_PREFIXES):
        return None
    try:
        allowed = get_settings().cors_origins
    except SettingsError:
        return None
    origin = _header(event, "origin")
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def preflight(event: dict[str, Any]) -> dict[str, Any] | None:
    """204 for a CORS preflight of a public route (never routed, never authenticated)."""
    if event.get("httpMethod") != "OPTIONS" or _header(event, "access-control-request-method") is None:
        return None
    origin = allowed_origin(event)
    if origin is None:
        return None
    headers = {
        "Access-Control-Allow-Origin": [origin],
        "Access-Control-Allow-Methods": [ALLOW_METHODS],
        "Access-Control-Allow-Headers": [ALLOW_HEADERS],
        "Access-Control-Max-Age": ["600"],
        "Vary": ["Origin"],
    }
    return {"statusCode": 204, "multiValueHeaders": headers, "body": "", "isBase64Encoded": False}


def decorate(event: dict[str, Any], answer: dict[str, Any]) -> None:
    """Add the CORS headers to an answer of a public route."""
    origin = allowed_origin(event)
    if origin is None:
        return
    headers = answer.setdefault("multiValueHeaders", {})
    headers["Access-Control-Allow-Origin"] = [origin]
    headers["Access-Control-Expose-Headers"] = [EXPOSE_HEADERS]
    headers["Vary"] = ["Origin"]
