"""The publisher function: outside the VPC, it posts one change message to the AppSync Events HTTP endpoint.

The flag function (in a VPC without NAT) invokes it asynchronously with the body of the publish
(publish.publish_request). It signs the post with its role (SigV4, service `appsync`): only this role may
publish, the browsers' token may not. A refused or failed publish raises, so Lambda retries the event
(twice) and then sends it to the on-failure queue, whose depth is alarmed (docs/operations.md).

Settings: EVENT_API_PUBLISH_URL (`https://<http domain>/event`), AWS_REGION.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)
CHANNEL = re.compile(r"^/flags/[A-Za-z0-9-]{1,50}$")
MAX_EVENT_LENGTH = 1024
POST_SECONDS = 5.0


class PublishError(Exception):
    """AppSync Events refused the publish (or an answer said an event failed); Lambda retries the event."""


def checked_body(event: Any) -> bytes:
    """The invoke payload, checked: one short event on one flag channel (anything else is not ours)."""
    channel = event.get("channel") if isinstance(event, dict) else None
    events = event.get("events") if isinstance(event, dict) else None
    if not (isinstance(channel, str) and CHANNEL.match(channel)):
        raise ValueError("not a flag channel")
    if not (isinstance(events, list) and len(events) == 1 and isinstance(events[0], str)):
        raise ValueError("expected exactly one event")
    if len(events[0]) > MAX_EVENT_LENGTH:
        raise ValueError("event too long")
    return json.dumps({"channel": channel, "events": events}).encode()


def signed_request(url: str, body: bytes, region: str) -> urllib.request.Request:
    """A SigV4-signed POST (service `appsync`) with the function's own credentials."""
    import boto3  # type: ignore[import-untyped]  # botocore and boto3 ship no type hints
    from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]

    credentials = boto3.Session().get_credentials()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), "appsync", region).add_auth(request)
    return urllib.request.Request(url, body, dict(request.headers.items()), method="POST")


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    body = checked_body(event)
    request = signed_request(os.environ["EVENT_API_PUBLISH_URL"], body, os.environ["AWS_REGION"])
    with urllib.request.urlopen(request, timeout=POST_SECONDS) as answer:  # noqa: S310 - the URL is our setting
        result = json.loads(answer.read() or b"{}")
    if result.get("failed"):
        raise PublishError(f"AppSync Events refused the event: {result['failed']}")
    logger.info(json.dumps({"message": "change published", "channel": event["channel"]}))
    return {"published": len(result.get("successful", [])) or 1}
