"""One message per change of the flag set, on the environment's push channel (DESIGN.md "Change events").

Whatever moves the revision publishes: a write whose cache step Redis took (service.py) and the background
sync when it raises Redis's revision after a replay (sync.py). A write whose cache step failed publishes
nothing then; its replay does. The message carries the revision, so a duplicate (two containers racing to
repair the same revision) costs one extra conditional re-fetch, never a wrong value.

Deployed, the flag function runs in a VPC without NAT: it invokes the publisher function (outside the VPC)
asynchronously through the Lambda interface endpoint, and the publisher posts to AppSync Events. Locally, the
stand-in channel (local/channel.py) takes the same post directly. Publishing never fails a write or a sync
pass: a failed message is owed and sent again by the next sync pass; one that never goes (the publisher
itself failing, its queue alarmed) is caught up by every client on its next connect (docs/operations.md).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from flagservice.telemetry import logger

NAMESPACE = "flags"
# A write waits for the invoke: bounded tightly, one attempt. A failed one is owed, and sent again by the
# next sync pass (every second) or the next change, whichever comes first (RetryingPublisher).
INVOKE_CONNECT_SECONDS = 0.3
INVOKE_READ_SECONDS = 0.5
POST_SECONDS = 1.0


class ChangePublisher(Protocol):
    def publish(self, revision: int) -> None:
        """Announce that the flag set is now at `revision`; never raises."""

    def flush(self) -> None:
        """Send again what failed to go (the background sync calls it on every pass); never raises."""


class RetryingPublisher:
    """One message per change; a message that failed is owed until one goes through.

    The message says "re-fetch: the flag set is at least at this revision", so the owed one and a newer
    one coalesce into the newest: a burst while the channel is unreachable ends in one message, never in
    a missed change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owed: int | None = None

    def _send(self, revision: int) -> None:
        raise NotImplementedError

    def publish(self, revision: int) -> None:
        with self._lock:
            revision = max(revision, self._owed or 0)
            self._owed = None
        try:
            self._send(revision)
        except Exception as exc:  # noqa: BLE001 - any SDK or network error: owed, and retried
            logger.warning("change not published", revision=revision, error=type(exc).__name__)
            with self._lock:
                self._owed = max(revision, self._owed or 0)

    def flush(self) -> None:
        with self._lock:
            owed = self._owed
        if owed is not None:
            self.publish(owed)


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


class LambdaInvokePublisher(RetryingPublisher):
    """Deployed: an asynchronous invoke (InvocationType Event) of the publisher function, bounded in time."""

    def __init__(self, function_name: str, environment: str, client: Any = None) -> None:
        super().__init__()
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
                retries={"mode": "standard", "total_max_attempts": 1},
            )
            self._client = boto3.client("lambda", config=config)
        return self._client

    def _send(self, revision: int) -> None:
        body = publish_request(self._environment, revision, time.time())
        self.client().invoke(
            FunctionName=self._function_name, InvocationType="Event", Payload=json.dumps(body).encode()
        )


class HttpChannelPublisher(RetryingPublisher):
    """Locally: the stand-in channel's publish endpoint, open on loopback (no signing)."""

    def __init__(self, url: str, environment: str, opener: Callable[..., Any] = urllib.request.urlopen) -> None:
        super().__init__()
        self._url = url
        self._environment = environment
        self._open = opener

    def _send(self, revision: int) -> None:
        body = json.dumps(publish_request(self._environment, revision, time.time())).encode()
        request = urllib.request.Request(self._url, body, {"Content-Type": "application/json"}, method="POST")
        with self._open(request, timeout=POST_SECONDS) as answer:
            answer.read()


class NoPublisher:
    """No deployed channel: the SSE stream follows Redis's revision by itself (local/events.py)."""

    def publish(self, revision: int) -> None:
        pass

    def flush(self) -> None:
        pass
