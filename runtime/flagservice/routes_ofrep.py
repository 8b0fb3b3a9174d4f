"""OpenFeature Remote Evaluation Protocol (OFREP) v1: single and bulk evaluation.

Unknown top-level fields are ignored; errors use OpenFeature codes (the handler maps them).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from flagservice import wiring
from flagservice.errors import FlagNotFoundError, InvalidContextError, about_flag
from flagservice.flags.model import is_valid_key
from flagservice.http import json_object, json_response, query_str, read_headers
from flagservice.push.advertise import event_streams, tagged_etag, untagged
from flagservice.settings import get_settings

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
    """OFREP single evaluation: only OpenFeature codes, and every error names the key (an invalid key
    is a flag that does not exist)."""
    with about_flag(key):
        if not is_valid_key(key):
            raise FlagNotFoundError("no such flag", key=key)
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
    event, settings, now = router.current_event, get_settings(), time.time()
    context = _context()
    bulk = wiring.get_service().evaluate_all(
        context,
        if_none_match=untagged(settings, event.headers.get("if-none-match"), now=now),
        at_least=_revision(query_str(event, "flagConfigEtag")),
    )
    headers = read_headers(bulk.outcome, {"ETag": tagged_etag(settings, bulk.etag, now=now)})
    if bulk.answers is None:
        return Response(status_code=304, body="", headers=headers)
    body: dict[str, Any] = {"flags": [item.to_ofrep() for item in bulk.answers]}
    streams = event_streams(settings, bulk.revision, now=now)
    if streams:
        body["eventStreams"] = streams
    return json_response(200, body, headers)


def _revision(etag: str | None) -> int | None:
    """The revision an event's `etag` names (the re-fetch must be at least that new); anything else is ignored."""
    text = (etag or "").strip().strip('"')
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
