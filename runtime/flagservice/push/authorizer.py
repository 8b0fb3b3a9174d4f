"""The channel's Lambda authorizer (AppSync Events, AWS_LAMBDA mode): browsers may connect and subscribe with a
valid token (token.py) for this environment, and do nothing else.

AppSync calls it on connect and on each subscribe with the token as `authorizationToken` and the operation in
`requestContext`; publish is never allowed here (the namespace publishes with IAM only, and this says no too).
The channel is not compared: the Event API belongs to one environment and has one namespace, so a token can
only ever subscribe to this environment's flag changes (and a denial over a channel-name format would cut
every browser off).
The answer is cached by AppSync for `ttlOverride` seconds, never past the token's expiry.

Settings: FLAGS_ENV, and PUSH_TOKEN_SECRET_ARN (the HMAC secret shared with the flag function).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

from flagservice.push import token

ALLOWED_OPERATIONS = frozenset({"EVENT_CONNECT", "EVENT_SUBSCRIBE"})
MAX_CACHE_SECONDS = 300
DENY = {"isAuthorized": False}


@functools.lru_cache(maxsize=1)
def _secret() -> bytes:
    """Read once per container: a rotated secret reaches new containers (both sides accept a token until it expires)."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    return str(get_secret(os.environ["PUSH_TOKEN_SECRET_ARN"])).encode()


def decide(event: Any, secret: bytes, environment: str, now: float) -> dict[str, Any]:
    """Allow connect/subscribe on this environment's channel with a valid token; deny anything else."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return DENY
    request = event["requestContext"]
    if request.get("operation") not in ALLOWED_OPERATIONS:
        return DENY
    left = token.seconds_left(secret, environment, event.get("authorizationToken"), now=now)
    if left <= 0:
        return DENY
    return {"isAuthorized": True, "ttlOverride": min(left, MAX_CACHE_SECONDS)}


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return decide(event, _secret(), os.environ["FLAGS_ENV"], time.time())
