"""Admin routes: writes with If-Match, history, cache stats and the event stream. Every route authenticates first."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError

from flagservice import wiring
from flagservice.auth import admin_actor
from flagservice.errors import CacheUnavailableError, InvalidFlagError, StoreUnavailableError
from flagservice.flags.model import format_time
from flagservice.http import if_match, json_object, json_response, query_int
from flagservice.ports import HistoryEntry, WriteAction, WriteResult
from flagservice.push.advertise import event_streams
from flagservice.routes_read import flags_page
from flagservice.settings import get_settings
from flagservice.validation import describe, parse_definition, require_valid_key

router = APIGatewayRouter()
NO_STORE = {"Cache-Control": "no-store"}


class RevertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: StrictInt


def _actor() -> str:
    return admin_actor(router.current_event, get_settings())


def _stored(result: WriteResult, status: int = 200) -> Response[str]:
    assert result.flag is not None
    return json_response(status, result.flag.to_api(), {**NO_STORE, "ETag": f'"{result.version}"'})


@router.get("/admin/flags")
def list_flags() -> Response[str]:
    _actor()
    return flags_page(router.current_event)


@router.post("/admin/flags")
def put_flag() -> Response[str]:
    actor = _actor()
    definition = parse_definition(json_object(router.current_event))
    result = wiring.get_service().put_flag(definition, actor=actor, if_match=if_match(router.current_event))
    return _stored(result, 201 if result.action is WriteAction.CREATE else 200)


@router.patch("/admin/flags/<key>")
def patch_flag(key: str) -> Response[str]:
    actor = _actor()
    require_valid_key(key)
    changes = json_object(router.current_event)
    changes.pop("version", None)
    changes.pop("updatedAt", None)
    result = wiring.get_service().patch_flag(key, changes, actor=actor, if_match=if_match(router.current_event))
    return _stored(result)


@router.delete("/admin/flags/<key>")
def delete_flag(key: str) -> Response[str]:
    actor = _actor()
    require_valid_key(key)
    wiring.get_service().delete_flag(key, actor=actor, if_match=if_match(router.current_event))
    return Response(status_code=204, body="", headers=NO_STORE)


@router.post("/admin/flags/<key>/revert")
def revert_flag(key: str) -> Response[str]:
    actor = _actor()
    require_valid_key(key)
    try:
        request = RevertRequest.model_validate(json_object(router.current_event))
    except ValidationError as exc:
        raise InvalidFlagError(describe(exc), key=key) from None
    service = wiring.get_service()
    result = service.revert_flag(key, request.version, actor=actor, if_match=if_match(router.current_event))
    return _stored(result)


def _history_item(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "action": entry.action.value,
        "actor": entry.actor,
        "at": format_time(entry.at),
        "before": entry.before,
        "after": entry.after,
    }


@router.get("/admin/flags/<key>/history")
def history(key: str) -> Response[str]:
    _actor()
    require_valid_key(key)
    event = router.current_event
    limit = query_int(event, "limit", default=100, low=1, high=1000)
    after = query_int(event, "after", default=None, low=1, high=2**62)
    assert limit is not None
    page = wiring.get_service().history(key, after=after, limit=limit)
    body = {"history": [_history_item(entry) for entry in page.items], "next": page.next}
    return json_response(200, body, NO_STORE)


@router.get("/admin/cache/stats")
def cache_stats() -> Response[str]:
    _actor()
    return json_response(200, wiring.get_service().cache_stats(), NO_STORE)


@router.get("/admin/event-streams")
def admin_event_streams() -> Response[str]:
    """Where the console listens for changes: the `eventStreams` a bulk evaluation would advertise (deployed, the
    push channel with a fresh read-only token), under admin auth, so the console needs no readers' API key."""
    _actor()
    revision = wiring.get_service().change_revision()
    return json_response(200, {"eventStreams": event_streams(get_settings(), revision, now=time.time())}, NO_STORE)


@router.post("/admin/cache/warm")
def warm_cache() -> Response[str]:
    """Fill the cache reads move to next with every flag (a blue/green cache move, docs/operations.md)."""
    _actor()
    try:
        report = wiring.warm_next_cache()
    except CacheUnavailableError as exc:
        raise StoreUnavailableError(f"the cache to warm is unavailable: {str(exc)[:200]}") from None
    return json_response(200, report.to_api(), NO_STORE)
