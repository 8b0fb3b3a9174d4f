"""The push channel end to end on real stores (issue 17): whatever moves the revision publishes one message per
change (a write whose cache step Redis took; the outbox replay of one it did not), and the publisher function's
post reaches a subscriber of the local stand-in channel (local/channel.py), which speaks AppSync Events' protocol.

The flag function's invoke goes to botocore's Stubber (the Lambda API's published model), every call recorded.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from websockets.sync.client import ClientConnection, connect

from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.flags.model import FlagDefinition
from flagservice.push import publisher, token
from flagservice.push.publish import LambdaInvokePublisher, channel, publish_request
from flagservice.service import FlagService
from tests import servers
from tests.conftest import clean_database, redis_cache

REPO = Path(__file__).resolve().parents[2]
SECRET = "push-test-secret-0123456789abcdefghijkl"


class RecordedInvokes:
    """A Lambda client stubbed with `expected` 202 answers; `revisions` are the revisions every invoke carried."""

    def __init__(self, expected: int) -> None:
        self.client = boto3.client("lambda", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
        self.payloads: list[dict[str, Any]] = []
        self.client.meta.events.register("provide-client-params.lambda.Invoke", self._record)
        self.stubber = Stubber(self.client)
        for _ in range(expected):
            self.stubber.add_response("invoke", {"StatusCode": 202})
        self.stubber.activate()

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        self.payloads.append(json.loads(params["Payload"]))

    @property
    def revisions(self) -> list[int]:
        return [int(json.loads(body["events"][0])["etag"]) for body in self.payloads]


@pytest.fixture
def stores(postgres_url: str) -> Iterator[tuple[PostgresFlagRepository, servers.ServerProcess]]:
    clean_database(postgres_url)
    redis_server = servers.redis_for_tests()
    repository = PostgresFlagRepository.connect(postgres_url)
    yield repository, redis_server
    repository.close()
    redis_server.resume()
    redis_server.stop()


def _service(stores: tuple[PostgresFlagRepository, servers.ServerProcess], invokes: RecordedInvokes) -> FlagService:
    repository, redis_server = stores
    cache = redis_cache(redis_server.url)
    return FlagService(repository, cache, publisher=LambdaInvokePublisher("publisher", "prod", invokes.client))


def define(key: str, enabled: bool = True) -> FlagDefinition:
    return FlagDefinition.model_validate({"key": key, "enabled": enabled})


def test_each_write_publishes_exactly_one_message_with_its_revision(
    stores: tuple[PostgresFlagRepository, servers.ServerProcess],
) -> None:
    invokes = RecordedInvokes(expected=3)
    service = _service(stores, invokes)

    written = [
        service.put_flag(define("kill"), actor="t", if_match=None),
        service.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None),
        service.delete_flag("kill", actor="t", if_match=None),
    ]
    service.reads.on_suspect()  # a sync pass finds Redis current: it publishes nothing more

    assert invokes.revisions == [result.revision for result in written]
    assert {body["channel"] for body in invokes.payloads} == {"/flags/prod"}
    invokes.stubber.assert_no_pending_responses()


def test_a_write_redis_missed_publishes_nothing_until_its_replay_which_publishes_once(
    stores: tuple[PostgresFlagRepository, servers.ServerProcess],
) -> None:
    invokes = RecordedInvokes(expected=2)
    service = _service(stores, invokes)
    service.put_flag(define("kill"), actor="t", if_match=None)
    # Given Redis paused while the kill switch is written (its cache step fails, the outbox keeps it)
    stores[1].pause()
    killed = service.patch_flag("kill", {"enabled": False}, actor="oncall", if_match=None)
    stores[1].resume()
    assert len(invokes.payloads) == 1
    # When the sync replays the outbox, twice (the second pass finds nothing to do)
    service.reads.on_suspect()
    service.reads.on_suspect()
    # Then exactly one more message, with the replayed revision
    assert invokes.revisions[1:] == [killed.revision]
    invokes.stubber.assert_no_pending_responses()


@pytest.fixture
def stand_in() -> Iterator[tuple[str, str]]:
    """The local channel on free ports: its WebSocket URL and its publish URL."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'runtime'}:{REPO}", "PUSH_TOKEN_SECRET": SECRET, "FLAGS_ENV": "prod"}
    child = subprocess.Popen(
        [sys.executable, "-m", "local.channel", "--port", "0", "--keepalive", "0.2"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    _, ws_port, publish_port = child.stdout.readline().split()
    yield f"ws://127.0.0.1:{ws_port}/event/realtime", f"http://127.0.0.1:{publish_port}/event"
    child.terminate()
    child.wait(timeout=5)


def _open(url: str, credential: str) -> ClientConnection:
    header = base64.urlsafe_b64encode(json.dumps({"host": "h", "Authorization": credential}).encode()).rstrip(b"=")
    socket = connect(url, subprotocols=["aws-appsync-event-ws", f"header-{header.decode()}"], open_timeout=5)  # type: ignore[list-item]
    socket.send(json.dumps({"type": "connection_init"}))
    return socket


def _next(socket: ClientConnection, *skipped: str) -> dict[str, Any]:
    while (message := json.loads(socket.recv(timeout=5)))["type"] in skipped:
        pass
    return dict(message)


def test_the_publisher_function_reaches_a_subscriber_of_the_channel(
    stand_in: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_url, publish_url = stand_in
    credential = token.mint(SECRET.encode(), "prod", now=time.time())
    socket = _open(ws_url, credential)
    assert _next(socket)["type"] == "connection_ack"
    socket.send(json.dumps({"type": "subscribe", "id": "s1", "channel": channel("prod"),
                            "authorization": {"Authorization": credential}}))  # fmt: skip
    assert _next(socket, "ka") == {"type": "subscribe_success", "id": "s1"}
    monkeypatch.setenv("EVENT_API_PUBLISH_URL", publish_url)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")

    publisher.lambda_handler(publish_request("prod", 42, time.time()), None)

    message = _next(socket, "ka")
    assert (message["type"], message["id"]) == ("data", "s1")
    assert json.loads(message["event"])["etag"] == "42"
    socket.close()


def test_the_channel_refuses_a_bad_credential_and_another_channel(stand_in: tuple[str, str]) -> None:
    ws_url, _ = stand_in
    refused = _open(ws_url, "v1.1.forged")
    assert _next(refused)["type"] == "connection_error"
    credential = token.mint(SECRET.encode(), "prod", now=time.time())
    socket = _open(ws_url, credential)
    _next(socket)
    socket.send(json.dumps({"type": "subscribe", "id": "s1", "channel": "/flags/staging",
                            "authorization": {"Authorization": credential}}))  # fmt: skip
    assert _next(socket, "ka")["type"] == "subscribe_error"
    socket.send("not json")
    socket.send(json.dumps({"type": "publish", "id": "p", "channel": channel("prod"), "events": ["{}"]}))
    assert _next(socket, "ka")["type"] == "error"  # browsers never publish, not even with a valid token
    socket.close()
