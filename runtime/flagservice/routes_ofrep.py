"""OpenFeature Remote Evaluation Protocol (OFREP) v1: single and bulk evaluation.

Unknown top-level fields are ignored; errors use OpenFeature codes (the handler maps them).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from flagservice import wiring
from flagservice.errors import InvalidContextError
from flagservice.http import json_object, json_response, read_headers
from flagservice.validation import require_valid_key

router = APIGatewayRouter()
SINGLE = "/ofrep/v1/evaluate/flags/"


def _context() -> dict[str, Any]:
    """The evaluation context: a JSON object whose `targetingKey`, if given, is a string."""
    context = json_object(router.current_event).get("context")
    if not isinstance(context, dict):
        raise InvalidContextError("context must be a JSON object")
    if "targetingKey" in context and not isinstance(context["targetingKey"], str):
        raise InvalidContextError("targetingKey must be a string")
    return context


@router.post("/ofrep/v1/evaluate/flags/<key>")
def evaluate_flag(key: str) -> Response[str]:
    require_valid_key(key)
    context = _context()
    result, outcome = wiring.get_service().evaluate(key, context)
    return json_response(200, result.to_ofrep(), read_headers(outcome))


@router.post(SINGLE + r"[\s\S]+")  # any character, a newline too
def evaluate_flag_any_key() -> Response[str]:
    """A key the route above cannot carry (a `/`, a newline, or another character outside Powertools' pattern).

    Without this catch-all (registered after it, so it sees only those keys), such a request is the generic
    404 `NOT_FOUND`; on OFREP it must be 404 `FLAG_NOT_FOUND` with the key (CONTRACT.md section 2).
    """
    return evaluate_flag(router.current_event.path.removeprefix(SINGLE))


@router.post("/ofrep/v1/evaluate/flags")
def evaluate_flags() -> Response[str]:
    context = _context()
    if_none_match = router.current_event.headers.get("if-none-match")
    bulk = wiring.get_service().evaluate_all(context, if_none_match=if_none_match)
    headers = read_headers(bulk.outcome, {"ETag": bulk.etag})
    if bulk.answers is None:
        return Response(status_code=304, body="", headers=headers)
    return json_response(200, {"flags": [item.to_ofrep() for item in bulk.answers]}, headers)
