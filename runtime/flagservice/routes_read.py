"""Read routes: one flag, the list, and health."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from flagservice import wiring
from flagservice.errors import InvalidKeyError
from flagservice.flags.model import is_valid_key
from flagservice.http import JSON, json_response, query_int, query_str, read_headers
from flagservice.validation import require_valid_key

router = APIGatewayRouter()


@router.get("/flags/<key>")
def get_flag(key: str) -> Response[str]:
    require_valid_key(key)
    lookup = wiring.get_service().get_flag(key)
    headers = read_headers(lookup.outcome, {"ETag": f'"{lookup.flag.version}"'})
    return Response(status_code=200, content_type=JSON, body=lookup.flag.api_json, headers=headers)


@router.get("/flags")
def list_flags() -> Response[str]:
    return flags_page(router.current_event)


def flags_page(event: APIGatewayProxyEvent) -> Response[str]:
    """A page of `GET /flags` (also `GET /admin/flags`, the same answer under admin auth)."""
    limit = query_int(event, "limit", default=100, low=1, high=1000)
    after = query_str(event, "after")
    if after is not None and not is_valid_key(after):
        raise InvalidKeyError("after must be a flag key", key=None)
    assert limit is not None
    page = wiring.get_service().list_flags(after=after, limit=limit)
    body = {"flags": [flag.to_api() for flag in page.items], "next": page.next}
    return json_response(200, body, read_headers(page.outcome))


@router.get("/health")
def health() -> Response[str]:
    report = wiring.get_service().health()
    status = 200 if report["status"] != "unavailable" else 503
    if status == 503:
        report["status"] = "degraded"
    return json_response(status, report, {"Cache-Control": "no-store"})
