"""The Lambda entry point: Powertools resolver, decorators, and errors mapped to the contract's shape."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from flagservice import cors, errors, routes_admin, routes_ofrep, routes_read, wiring
from flagservice.console import routes as routes_console
from flagservice.http import error_body, json_response, read_headers
from flagservice.lambda_context import LocalContext, allowed_methods, request_id
from flagservice.ports import CacheOutcome
from flagservice.settings import SettingsError
from flagservice.telemetry import function_version, logger, metrics, record_answer, tracer

app = APIGatewayRestResolver()
app.include_router(routes_read.router)
app.include_router(routes_admin.router)
app.include_router(routes_ofrep.router)
app.include_router(routes_console.router)

ERRORS: dict[type[errors.FlagServiceError], tuple[int, str]] = {
    errors.ParseError: (400, "PARSE_ERROR"),
    errors.InvalidKeyError: (400, "INVALID_KEY"),
    errors.InvalidFlagError: (400, "INVALID_FLAG"),
    errors.InvalidContextError: (400, "INVALID_CONTEXT"),
    errors.TargetingKeyMissingError: (400, "TARGETING_KEY_MISSING"),
    errors.UnauthorizedError: (401, "UNAUTHORIZED"),
    errors.ForbiddenError: (403, "FORBIDDEN"),
    errors.FlagNotFoundError: (404, "FLAG_NOT_FOUND"),
    errors.VersionConflictError: (412, "VERSION_CONFLICT"),
    errors.PayloadTooLargeError: (413, "PAYLOAD_TOO_LARGE"),
    errors.StoreUnavailableError: (503, "SERVICE_UNAVAILABLE"),
    errors.GeneralError: (500, "GENERAL"),
}
"""The one map from domain error to HTTP (a subclass answers as its nearest listed ancestor)."""


@app.exception_handler(list(ERRORS))
def domain_error(exc: errors.FlagServiceError) -> Response[str]:
    status, code = next(ERRORS[kind] for kind in type(exc).__mro__ if kind in ERRORS)
    if status == 500:
        logger.exception("unexpected error", flag=exc.key)
    headers = {"Cache-Control": "no-store"}
    if exc.outcome is not None:
        headers = read_headers(CacheOutcome(exc.outcome))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return json_response(status, error_body(code, exc.detail, exc.key), headers)


@app.not_found
def no_route(_: NotFoundError) -> Response[str]:
    event = app.current_event
    allowed = allowed_methods(app, event.path)
    if allowed:
        body = error_body("METHOD_NOT_ALLOWED", f"{event.http_method} is not allowed here")
        return json_response(405, body, {"Allow": ", ".join(allowed)})
    return json_response(404, error_body("NOT_FOUND", "no such route"))


@app.exception_handler(SettingsError)
def invalid_settings(exc: SettingsError) -> Response[str]:
    logger.error(str(exc))
    return json_response(500, error_body("GENERAL", "the service is misconfigured"))


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return json_response(500, error_body("GENERAL", "internal error"))


def _resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    answer: dict[str, Any] = app.resolve(event, context)
    return answer


# Tracer's decorator costs a tenth of an in-process hit even when tracing is off (it still builds
# dummy segments), so it wraps the handler only where tracing is on.
# The answer is not copied into the trace (capture_response): it is the largest part of a segment.
_traced = _resolve if tracer.disabled else tracer.capture_lambda_handler(_resolve, capture_response=False)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # The correlation id is the request id we echo (no JMESPath search of the event per request).
    logger.set_correlation_id(request_id(event))
    with wiring.request_scope():
        answer: dict[str, Any] = _traced(event, context)
    record_answer(int(answer["statusCode"]), function_version(context))  # 5xx per version: the canary's alarms
    return answer


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """API Gateway REST proxy event in, proxy result out; `X-Request-Id` echoed on every answer."""
    answer = cors.preflight(event)
    echoed = request_id(event)
    if answer is None:
        answer = _handle(event, context or LocalContext())
        echoed = logger.get_correlation_id() or echoed
    answer.setdefault("multiValueHeaders", {})["X-Request-Id"] = [echoed]
    cors.decorate(event, answer)
    return answer


def warm() -> None:
    """Time-boxed prefetch of the most-read flags; swallows every error (a cold start stays merely cold)."""
    try:
        service = wiring.get_service()
        with service.request():
            loaded = service.warm()
        logger.info("warmed", flags=loaded)
    except Exception as exc:  # noqa: BLE001 - warming must never break a container
        logger.warning("warming failed", error=type(exc).__name__)


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    warm()  # Lambda's init phase: the only import-time I/O, bounded by the Redis timeouts
