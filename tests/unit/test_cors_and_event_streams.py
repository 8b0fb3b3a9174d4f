"""CORS on the public routes and the bulk answer's event stream (CONTRACT.md section 5), through the handler."""

from __future__ import annotations

from typing import Any

import pytest

from flagservice import wiring
from flagservice.service import FlagService
from tests.apigw import BEARER, call

BULK = {"context": {"targetingKey": "u"}}
PAGE = {"Origin": "http://page.example"}


@pytest.fixture
def streamed(monkeypatch: pytest.MonkeyPatch, fake_service: FlagService) -> FlagService:
    monkeypatch.setenv("EVENT_STREAM_URL", "http://127.0.0.1:9999/events")
    wiring.get_settings.cache_clear()
    call("POST", "/admin/flags", body={"key": "kill", "enabled": True}, headers=BEARER)
    return fake_service


def test_a_bulk_answer_advertises_the_stream_at_its_own_revision(streamed: FlagService) -> None:
    answer = call("POST", "/ofrep/v1/evaluate/flags", body=BULK)
    revision = streamed.reads.repository.revision()
    assert answer.json["eventStreams"] == [
        {"type": "sse", "url": f"http://127.0.0.1:9999/events?since={revision}", "inactivityDelaySec": 120}
    ]


def test_no_stream_is_advertised_where_none_is_served(fake_service: FlagService) -> None:
    call("POST", "/admin/flags", body={"key": "kill", "enabled": True}, headers=BEARER)
    assert "eventStreams" not in call("POST", "/ofrep/v1/evaluate/flags", body=BULK).json


def test_a_refetch_after_an_event_is_at_least_as_new_as_the_event(streamed: FlagService) -> None:
    call("POST", "/ofrep/v1/evaluate/flags", body=BULK)  # this container's in-process snapshot
    other = FlagService(streamed.reads.repository, streamed.reads.cache)  # a write in another container
    written = other.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    answer = call("POST", "/ofrep/v1/evaluate/flags", body=BULK, query={"flagConfigEtag": str(written.revision)})
    assert answer.json["flags"][0]["value"] is False


@pytest.mark.parametrize("etag", ["garbage", "-1", "9" * 40, "", '"'])
def test_an_unparseable_flag_config_etag_is_ignored(streamed: FlagService, etag: str) -> None:
    answer = call("POST", "/ofrep/v1/evaluate/flags", body=BULK, query={"flagConfigEtag": etag})
    assert answer.status == 200


@pytest.mark.parametrize(
    ("method", "path", "spec"),
    [
        ("GET", "/flags/kill", {}),
        ("GET", "/flags/absent", {}),
        ("GET", "/flags", {}),
        ("POST", "/ofrep/v1/evaluate/flags/kill", {"body": BULK}),
        ("POST", "/ofrep/v1/evaluate/flags/kill", {"body": "{"}),
        ("POST", "/ofrep/v1/evaluate/flags", {"body": BULK}),
        ("GET", "/health", {}),
    ],
)
def test_every_public_answer_carries_cors(streamed: FlagService, method: str, path: str, spec: dict[str, Any]) -> None:
    answer = call(method, path, headers=PAGE, body=spec.get("body"))
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "ETag" in answer.headers["access-control-expose-headers"]
    assert "Retry-After" in answer.headers["access-control-expose-headers"]


def test_a_304_carries_cors_too(streamed: FlagService) -> None:
    etag = call("POST", "/ofrep/v1/evaluate/flags", body=BULK).headers["etag"]
    answer = call("POST", "/ofrep/v1/evaluate/flags", body=BULK, headers={**PAGE, "If-None-Match": etag})
    assert answer.status == 304 and answer.headers["access-control-allow-origin"] == "*"


def test_a_preflight_needs_no_credentials_and_covers_the_provider_headers(streamed: FlagService) -> None:
    answer = call(
        "OPTIONS",
        "/ofrep/v1/evaluate/flags",
        headers={**PAGE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert answer.status == 204
    allowed = answer.headers["access-control-allow-headers"]
    assert all(name in allowed for name in ("Content-Type", "If-None-Match", "X-API-Key"))
    assert "POST" in answer.headers["access-control-allow-methods"]


def test_admin_routes_get_no_cors(streamed: FlagService) -> None:
    answer = call("GET", "/admin/flags", headers={**PAGE, **BEARER})
    assert answer.status == 200 and "access-control-allow-origin" not in answer.headers


def test_listed_origins_are_echoed_and_others_get_nothing(
    streamed: FlagService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "http://page.example,https://app.example")
    wiring.get_settings.cache_clear()
    assert call("GET", "/flags/kill", headers=PAGE).headers["access-control-allow-origin"] == "http://page.example"
    other = call("GET", "/flags/kill", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
