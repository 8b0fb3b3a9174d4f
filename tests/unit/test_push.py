"""The push channel's pieces without a network (issue 17): the token, the authorizer's decision, what the bulk
answer advertises, the publisher's input checks and signature, and the flag function's asynchronous invoke
(botocore's Stubber, against the Lambda API's published model)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.stub import Stubber

from flagservice.push import authorizer, publisher, token
from flagservice.push.advertise import event_streams, tagged_etag, untagged
from flagservice.push.publish import LambdaInvokePublisher, channel, publish_request
from flagservice.settings import SettingsError, load_settings

SECRET = b"s" * 32
NOW = 1_800_000_000.0
BASE = {"REDIS_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": "postgresql://127.0.0.1:1/x", "FLAGS_ENV": "prod"}


def test_a_minted_token_is_valid_for_its_environment_at_least_its_lifetime_and_then_expires() -> None:
    minted = token.mint(SECRET, "prod", now=NOW)

    assert token.seconds_left(SECRET, "prod", minted, now=NOW) >= token.LIFETIME_SECONDS
    assert token.seconds_left(SECRET, "prod", minted, now=NOW) <= token.LIFETIME_SECONDS + token.BUCKET_SECONDS
    assert token.seconds_left(SECRET, "prod", minted, now=NOW + token.LIFETIME_SECONDS + token.BUCKET_SECONDS) == 0
    assert token.seconds_left(SECRET, "staging", minted, now=NOW) == 0
    assert token.seconds_left(b"t" * 32, "prod", minted, now=NOW) == 0


def test_tokens_minted_within_one_bucket_are_the_same_so_the_advertised_url_stays_put() -> None:
    start = NOW - NOW % token.BUCKET_SECONDS + 1
    assert token.mint(SECRET, "prod", now=start) == token.mint(SECRET, "prod", now=start + token.BUCKET_SECONDS - 2)


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        7,
        "",
        "v1",
        "v1..",
        "v2.9999999999.x",
        "v1.-5.x",
        "v1.99999999999999999999.x",
        "v1.2000000000." + "A" * 200,
    ],
)
def test_anything_but_a_token_is_invalid(garbage: Any) -> None:
    assert token.seconds_left(SECRET, "prod", garbage, now=NOW) == 0


def test_a_forged_expiry_is_refused() -> None:
    version, _, mac = token.mint(SECRET, "prod", now=NOW).split(".")
    assert token.seconds_left(SECRET, "prod", f"{version}.{int(NOW) + 10**6}.{mac}", now=NOW) == 0


def _authorization(operation: str, credential: Any, path: str | None = "/flags/prod") -> dict[str, Any]:
    context: dict[str, Any] = {"apiId": "a", "accountId": "1", "requestId": "r", "operation": operation}
    if path is not None:
        context["channel"] = path
    return {"authorizationToken": credential, "requestContext": context, "requestHeaders": {}}


@pytest.mark.parametrize("operation", ["EVENT_CONNECT", "EVENT_SUBSCRIBE"])
def test_the_authorizer_lets_a_valid_token_connect_and_subscribe_for_at_most_five_minutes(operation: str) -> None:
    decision = authorizer.decide(_authorization(operation, token.mint(SECRET, "prod", now=NOW)), SECRET, "prod", NOW)
    assert decision == {"isAuthorized": True, "ttlOverride": authorizer.MAX_CACHE_SECONDS}


def test_the_authorizer_never_caches_a_decision_past_the_token_expiry() -> None:
    minted = token.mint(SECRET, "prod", now=NOW)
    late = NOW + token.seconds_left(SECRET, "prod", minted, now=NOW) - 20
    assert authorizer.decide(_authorization("EVENT_CONNECT", minted), SECRET, "prod", late)["ttlOverride"] == 20


@pytest.mark.parametrize(
    "event",
    [
        _authorization("EVENT_PUBLISH", token.mint(SECRET, "prod", now=NOW)),
        _authorization("EVENT_SUBSCRIBE", token.mint(SECRET, "staging", now=NOW)),
        _authorization("EVENT_CONNECT", "not a token"),
        {"authorizationToken": token.mint(SECRET, "prod", now=NOW)},
        None,
        [],
    ],
)
def test_the_authorizer_denies_publish_other_environments_and_garbage(event: Any) -> None:
    assert authorizer.decide(event, SECRET, "prod", NOW) == {"isAuthorized": False}


def test_the_bulk_answer_advertises_the_channel_with_a_token_and_no_revision() -> None:
    settings = load_settings(
        {**BASE, "PUSH_CHANNEL_URL": "wss://rt.example/event/realtime", "PUSH_TOKEN_SECRET": SECRET.decode(),
         "PUSH_CHANNEL_HOST": "http.example", "EVENT_STREAM_URL": "http://127.0.0.1:1/events"}
    )  # fmt: skip

    (stream,) = event_streams(settings, 41, now=time.time())

    url = urlsplit(stream["url"])
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert (stream["type"], url.scheme, url.netloc, url.path) == ("sse", "wss", "rt.example", "/event/realtime")
    assert query["channel"] == "/flags/prod" and query["host"] == "http.example" and "since" not in query
    assert token.seconds_left(SECRET, "prod", query["token"], now=time.time()) > 0


def test_without_a_channel_the_sse_stream_is_advertised_and_without_either_nothing() -> None:
    sse = load_settings({**BASE, "EVENT_STREAM_URL": "http://127.0.0.1:1/events"})
    assert event_streams(sse, 41, now=NOW)[0]["url"] == "http://127.0.0.1:1/events?since=41"
    assert event_streams(load_settings(BASE), 41, now=NOW) == []


def _channel_settings() -> Any:
    return load_settings({**BASE, "PUSH_CHANNEL_URL": "wss://rt.example/event/realtime", "PUSH_TOKEN_SECRET": "a" * 40})


def test_the_bulk_etag_names_the_token_so_a_client_whose_flags_never_change_still_gets_a_fresh_url() -> None:
    settings = _channel_settings()
    later = NOW + token.BUCKET_SECONDS

    sent = tagged_etag(settings, '"abc"', now=NOW)

    assert sent != '"abc"' and untagged(settings, sent, now=NOW) == '"abc"'  # same bucket: a 304 is fine
    assert untagged(settings, sent, now=later) is None  # a newer token: never a 304, the 200 carries it
    assert untagged(settings, f'W/"zzz", {sent}, *', now=NOW) == '"abc", *'
    assert tagged_etag(load_settings(BASE), '"abc"', now=NOW) == '"abc"'  # no channel: the ETag as it was
    assert untagged(load_settings(BASE), '"abc"', now=NOW) == '"abc"'


def test_an_unreadable_token_key_answers_without_a_stream_never_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings({**BASE, "PUSH_CHANNEL_URL": "wss://rt.example/x", "PUSH_TOKEN_SECRET_ARN": "arn:x"})

    def unreachable(arn: str) -> str:
        raise RuntimeError("Secrets Manager timed out")

    monkeypatch.setattr("flagservice.adapters.database_secret.read_secret", unreachable)
    assert event_streams(settings, 41, now=NOW) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"PUSH_CHANNEL_URL": "wss://rt.example/event/realtime"}, "needs PUSH_TOKEN_SECRET"),
        ({"PUSH_TOKEN_SECRET": "a" * 40, "ADMIN_TOKEN": "a" * 40}, "must not be the admin token"),
        ({"PUSH_CHANNEL_URL": "https://rt.example/x", "PUSH_TOKEN_SECRET": "a" * 40}, "PUSH_CHANNEL_URL"),
        ({"PUSH_TOKEN_SECRET": "short"}, "PUSH_TOKEN_SECRET"),
    ],
)
def test_push_settings_are_checked(extra: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({**BASE, **extra})


def test_the_channel_path_keeps_to_appsync_segment_characters() -> None:
    assert channel("load_test-2") == "/flags/load-test-2"
    assert publisher.CHANNEL.match(channel("load_test-2"))


@pytest.mark.parametrize(
    "event",
    [
        {"channel": "/flags/prod/../x", "events": ["{}"]},
        {"channel": "/other/prod", "events": ["{}"]},
        {"channel": "/flags/prod", "events": ["{}", "{}"]},
        {"channel": "/flags/prod", "events": [{"type": "refetchEvaluation"}]},
        {"channel": "/flags/prod", "events": ["x" * 2000]},
        "garbage",
    ],
)
def test_the_publisher_refuses_anything_but_one_short_event_on_a_flag_channel(event: Any) -> None:
    with pytest.raises(ValueError):
        publisher.checked_body(event)


def test_the_publisher_signs_its_post_for_appsync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    body = publisher.checked_body(publish_request("prod", 5, NOW))

    request = publisher.signed_request("https://http.example/event", body, "eu-west-1")

    authorization = request.get_header("Authorization")
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/appsync/aws4_request" in authorization
    assert request.data == body and request.get_method() == "POST"


def _stubbed_lambda() -> tuple[Any, Stubber, list[dict[str, Any]]]:
    client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    sent: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.lambda.Invoke", lambda params, **_: sent.append(params))
    return client, Stubber(client), sent


def test_the_flag_function_invokes_the_publisher_asynchronously_with_the_publish_body() -> None:
    client, stubber, sent = _stubbed_lambda()
    stubber.add_response("invoke", {"StatusCode": 202})

    with stubber:
        LambdaInvokePublisher("flagservice-prod-publisher", "prod", client).publish(12)

    stubber.assert_no_pending_responses()
    assert (sent[0]["FunctionName"], sent[0]["InvocationType"]) == ("flagservice-prod-publisher", "Event")
    body = json.loads(sent[0]["Payload"])
    assert body["channel"] == "/flags/prod" and json.loads(body["events"][0])["etag"] == "12"


@pytest.mark.parametrize("code", ["TooManyRequestsException", "ServiceException", "ResourceNotFoundException"])
def test_a_failed_invoke_never_fails_the_caller_and_is_sent_again_by_the_next_flush(code: str) -> None:
    client, stubber, sent = _stubbed_lambda()
    stubber.add_client_error("invoke", service_error_code=code, http_status_code=429)
    stubber.add_response("invoke", {"StatusCode": 202})
    publisher = LambdaInvokePublisher("flagservice-prod-publisher", "prod", client)

    with stubber:
        publisher.publish(12)
        publisher.flush()
        publisher.flush()  # nothing owed any more: no call (the Stubber would refuse a third)

    stubber.assert_no_pending_responses()
    assert [json.loads(json.loads(call["Payload"])["events"][0])["etag"] for call in sent] == ["12", "12"]


def test_an_owed_message_and_a_newer_change_go_as_one_message_with_the_newest_revision() -> None:
    client, stubber, sent = _stubbed_lambda()
    stubber.add_client_error("invoke", service_error_code="ServiceException", http_status_code=500)
    stubber.add_client_error("invoke", service_error_code="ServiceException", http_status_code=500)
    stubber.add_response("invoke", {"StatusCode": 202})
    publisher = LambdaInvokePublisher("flagservice-prod-publisher", "prod", client)

    with stubber:
        publisher.publish(14)
        publisher.publish(13)  # a replay of an older revision while 14 is owed
        publisher.flush()

    assert [json.loads(json.loads(call["Payload"])["events"][0])["etag"] for call in sent] == ["14", "14", "14"]


def test_the_adapter_is_one_small_file_with_no_dependency_and_no_network_fetch() -> None:
    source = (Path(__file__).resolve().parents[2] / "runtime/flagservice/console/static/flag-channel.js").read_text()

    assert len(source.splitlines()) <= 120
    assert "import " not in source and "require(" not in source and "https://" not in source
