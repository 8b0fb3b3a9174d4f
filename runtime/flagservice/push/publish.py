"""One message per change of the flag set, on the environment's push channel (DESIGN.md "Change events").

Whatever moves the revision publishes: a write whose cache step Redis took (service.py) and the background
sync when it raises Redis's revision after a replay (sync.py). A write whose cache step failed publishes
nothing then; its replay does. The message carries the revision, so a duplicate (two containers racing to
repair the same revision) costs one extra conditional re-fetch, never a wrong value.

Deployed, the flag function runs in a VPC without NAT: it invokes the publisher function (outside the VPC)
asynchronously through the Lambda interface endpoint, and the publisher posts to AppSync Events. Locally, the
stand-in channel (local/channel.py) takes the same post directly. Publishing never fails a write or a sync
pass: a lost message is caught up by every client on its next connect (docs/operations.md).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from flagservice.telemetry import logger

NAMESPACE = "flags"
INVOKE_CONNECT_SECONDS = 0.5
INVOKE_READ_SECONDS = 1.0
INVOKE_ATTEMPTS = 2
POST_SECONDS = 1.0


class ChangePublisher(Protocol):
    def publish(self, revision: int) -> None:
        """Announce that the flag set is now at `revision`; never raises."""


def channel(environment: str) -> str:
    """The environment's channel path (AppSync segments allow letters, digits and dashes only)."""
    return f"/{NAMESPACE}/{environment.replace('_', '-')}"


def change_event(revision: int, changed_at: float) -> str:
    """The message, the same payload as the SSE stream's `data:` line (CONTRACT.md section 5)."""
    data = {"type": "refetchEvaluation", "etag": str(revision), "lastModified": int(changed_at)}
    return json.dumps(data, separators=(",", ":"))


def publish_request(environment: str, revision: int, changed_at: float) -> dict[str, Any]:
    """The body of an AppSync Events HTTP publish (`POST https://<http domain>/event`): events are JSON strings."""
    return {"channel": channel(environment), "events": [change_event(revision, changed_at)]}


class LambdaInvokePublisher:
    """Deployed: an asynchronous invoke (InvocationType Event) of the publisher function, bounded in time."""

    def __init__(self, function_name: str, environment: str, client: Any = None) -> None:
        self._function_name = function_name
        self._environment = environment
        self._client = client

    def client(self) -> Any:
        if self._client is None:
            import boto3  # type: ignore[import-untyped]  # the Lambda runtime provides it
            from botocore.config import Config  # type: ignore[import-untyped]  # botocore ships no type hints

            config = Config(
                connect_timeout=INVOKE_CONNECT_SECONDS,
                read_timeout=INVOKE_READ_SECONDS,
                retries={"mode": "standard", "total_max_attempts": INVOKE_ATTEMPTS},
            )
            self._client = boto3.client("lambda", config=config)
        return self._client

    def publish(self, revision: int) -> None:
        body = publish_request(self._environment, revision, time.time())
        try:
            self.client().invoke(
                FunctionName=self._function_name, InvocationType="Event", Payload=json.dumps(body).encode()
            )
        except Exception as exc:  # noqa: BLE001 - any SDK or network error: clients catch up on reconnect
            logger.warning("change not published", revision=revision, error=type(exc).__name__)


class HttpChannelPublisher:
    """Locally: the stand-in channel's publish endpoint, open on loopback (no signing)."""

    def __init__(self, url: str, environment: str, opener: Callable[..., Any] = urllib.request.urlopen) -> None:
        self._url = url
        self._environment = environment
        self._open = opener

    def publish(self, revision: int) -> None:
        body = json.dumps(publish_request(self._environment, revision, time.time())).encode()
        request = urllib.request.Request(self._url, body, {"Content-Type": "application/json"}, method="POST")
        try:
            with self._open(request, timeout=POST_SECONDS) as answer:
                answer.read()
        except (OSError, ValueError) as exc:
            logger.warning("change not published", revision=revision, error=type(exc).__name__)


class NoPublisher:
    """No deployed channel: the SSE stream follows Redis's revision by itself (local/events.py)."""

    def publish(self, revision: int) -> None:
        pass
