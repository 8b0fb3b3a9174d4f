"""`GET /admin/event-streams`: the console's way to the event stream without the readers' API key (issue 18 item 4).

It answers what a bulk evaluation advertises (push/advertise.py), under admin auth, and the console page's
Content-Security-Policy lets the page connect to that stream's origin, the push channel's wss:// one deployed.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from flagservice import wiring
from flagservice.console.routes import content_security_policy
from flagservice.push import token
from flagservice.service import FlagService
from tests.apigw import BEARER, call
from tests.unit.test_console_sign_in import ROLE_ARN, cognito_identity

ROUTE = "/admin/event-streams"
SECRET = "k" * 40
CHANNEL = "wss://abc.appsync-realtime-api.eu-west-1.amazonaws.com/event/realtime"
BULK = {"context": {}}


@pytest.fixture
def sse(monkeypatch: pytest.MonkeyPatch, fake_service: FlagService) -> FlagService:
    monkeypatch.setenv("EVENT_STREAM_URL", "http://127.0.0.1:9999/events")
    wiring.get_settings.cache_clear()
    call("POST", "/admin/flags", body={"key": "kill", "enabled": True}, headers=BEARER)
    call("PATCH", "/admin/flags/kill", body={"enabled": False}, headers=BEARER)
    return fake_service


@pytest.fixture
def pushed(monkeypatch: pytest.MonkeyPatch, sse: FlagService) -> FlagService:
    """Deployed settings: the push channel advertised instead of the SSE stream (both set, as a check)."""
    monkeypatch.setenv("PUSH_CHANNEL_URL", CHANNEL)
    monkeypatch.setenv("PUSH_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("FLAGS_ENV", "prod")
    wiring.get_settings.cache_clear()
    return sse


def test_locally_it_answers_the_bulk_answers_sse_stream_at_the_current_revision(sse: FlagService) -> None:
    answer = call("GET", ROUTE, headers=BEARER)
    revision = sse.reads.repository.revision()

    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.json == {"eventStreams": call("POST", "/ofrep/v1/evaluate/flags", body=BULK).json["eventStreams"]}
    assert answer.json["eventStreams"][0]["url"] == f"http://127.0.0.1:9999/events?since={revision}"
    assert revision == 2


def test_deployed_it_answers_the_channel_with_a_fresh_read_only_token(pushed: FlagService) -> None:
    (stream,) = call("GET", ROUTE, headers=BEARER).json["eventStreams"]

    assert stream == call("POST", "/ofrep/v1/evaluate/flags", body=BULK).json["eventStreams"][0]
    url = urlsplit(stream["url"])
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == CHANNEL and query["channel"] == "/flags/prod"
    assert token.seconds_left(SECRET.encode(), "prod", query["token"], now=time.time()) >= token.LIFETIME_SECONDS - 5


def test_a_signed_console_person_may_ask_a_viewer_too(monkeypatch: pytest.MonkeyPatch, pushed: FlagService) -> None:
    """Deployed, API Gateway's IAM authorizer has let the signed call in (a viewer's role allows GET /admin/*)."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "flags-prod")
    viewer = ROLE_ARN.replace("flag-editors", "flag-viewers")

    answer = call("GET", ROUTE, user_arn=viewer, identity=cognito_identity())

    assert answer.status == 200 and answer.json["eventStreams"][0]["url"].startswith(CHANNEL + "?")
    assert call("GET", ROUTE, headers=BEARER).status == 403  # deployed, a token is never accepted


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [({}, 401, "UNAUTHORIZED"), ({"Authorization": "Bearer wrong"}, 403, "FORBIDDEN"), (BEARER, 200, None)],
)
def test_it_needs_the_admin_credential_like_every_admin_route(
    pushed: FlagService, headers: dict[str, str], status: int, code: str | None
) -> None:
    answer = call("GET", ROUTE, headers={**headers, "Origin": "http://page.example"})

    assert answer.status == status
    assert answer.json.get("errorCode") == code
    assert "token=" not in answer.body or status == 200
    assert "access-control-allow-origin" not in answer.headers  # admin routes: the console's own origin only


def test_only_get_is_allowed(sse: FlagService) -> None:
    answer = call("POST", ROUTE, headers=BEARER, body={})

    assert answer.status == 405 and answer.json["errorCode"] == "METHOD_NOT_ALLOWED"


def test_with_no_stream_served_the_list_is_empty(fake_service: FlagService) -> None:
    assert call("GET", ROUTE, headers=BEARER).json == {"eventStreams": []}


def test_while_redis_is_down_the_stream_starts_from_zero_so_the_client_catches_up(sse: FlagService) -> None:
    sse.reads.cache.down = True  # type: ignore[union-attr]

    answer = call("GET", ROUTE, headers=BEARER)

    assert answer.status == 200
    assert answer.json["eventStreams"][0]["url"] == "http://127.0.0.1:9999/events?since=0"


def test_an_unreadable_channel_credential_answers_no_stream_never_an_error(
    monkeypatch: pytest.MonkeyPatch, pushed: FlagService
) -> None:
    monkeypatch.delenv("PUSH_TOKEN_SECRET")
    monkeypatch.setenv("PUSH_TOKEN_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:push")
    wiring.get_settings.cache_clear()

    def unreadable(arn: str) -> str:
        raise RuntimeError("Secrets Manager unreachable")

    monkeypatch.setattr("flagservice.adapters.database_secret.read_secret", unreadable)

    assert call("GET", ROUTE, headers=BEARER).json == {"eventStreams": []}


def test_the_console_may_connect_to_the_advertised_stream_only(
    monkeypatch: pytest.MonkeyPatch, pushed: FlagService
) -> None:
    policy = content_security_policy()

    assert "connect-src 'self' wss://abc.appsync-realtime-api.eu-west-1.amazonaws.com;" in policy
    monkeypatch.delenv("PUSH_CHANNEL_URL")
    wiring.get_settings.cache_clear()
    assert "connect-src 'self' http://127.0.0.1:9999;" in content_security_policy()
