"""The `eventStreams` entry of a bulk answer: the deployed channel when there is one, else the local SSE stream.

The channel URL is the AppSync Events real-time endpoint with what the browser adapter needs in its query:
the channel, the HTTP host the authorization names, and a fresh read-only token (token.py). It carries no
`since`: AppSync cannot compare revisions, so the adapter re-fetches (conditionally) on every subscribe
instead, which keeps the URL stable across changes and the connection open (web/flag-channel.js).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from flagservice.errors import StoreUnavailableError
from flagservice.push import token
from flagservice.push.publish import channel
from flagservice.settings import Settings
from flagservice.telemetry import logger

INACTIVITY_DELAY = 120  # seconds a hidden page keeps its stream before the provider closes it


def token_secret(settings: Settings) -> bytes:
    """The HMAC secret shared with the authorizer: a setting locally, a Secrets Manager secret deployed."""
    if settings.PUSH_TOKEN_SECRET:
        return settings.PUSH_TOKEN_SECRET.encode()
    from flagservice.adapters.database_secret import read_secret

    assert settings.PUSH_TOKEN_SECRET_ARN is not None  # Settings requires one of the two with PUSH_CHANNEL_URL
    return str(read_secret(settings.PUSH_TOKEN_SECRET_ARN)).encode()


def channel_url(settings: Settings, *, now: float) -> str:
    url = settings.PUSH_CHANNEL_URL or ""
    query = {
        "channel": channel(settings.FLAGS_ENV),
        "host": settings.PUSH_CHANNEL_HOST or urlsplit(url).netloc,
        "token": token.mint(token_secret(settings), settings.FLAGS_ENV, now=now),
    }
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"


def event_streams(settings: Settings, revision: int) -> list[dict[str, Any]]:
    """Where this answer's client listens for changes; none when no stream is served (or its secret is unreadable)."""
    if settings.PUSH_CHANNEL_URL:
        try:
            url = channel_url(settings, now=time.time())
        except (StoreUnavailableError, OSError, ValueError) as exc:
            logger.warning("push channel credential unavailable", error=type(exc).__name__)
            return []
    elif settings.EVENT_STREAM_URL:
        stream = settings.EVENT_STREAM_URL
        url = f"{stream}{'&' if '?' in stream else '?'}since={revision}"
    else:
        return []
    return [{"type": "sse", "url": url, "inactivityDelaySec": INACTIVITY_DELAY}]
