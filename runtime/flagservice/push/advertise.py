"""The `eventStreams` entry of a bulk answer: the deployed channel when there is one, else the local SSE stream.

The channel URL is the AppSync Events real-time endpoint with what the browser adapter needs in its query:
the channel, the HTTP host the authorization names, and a fresh read-only token (token.py). It carries no
`since`: AppSync cannot compare revisions, so the adapter re-fetches (conditionally) on every subscribe
instead, which keeps the URL stable across changes and the connection open (the adapter:
runtime/flagservice/console/static/flag-channel.js).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

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


def tagged_etag(settings: Settings, etag: str, *, now: float) -> str:
    """The bulk ETag with the advertised token's expiry in it, when a channel is advertised.

    The answer's body carries the channel URL and its token, so the representation changes when the token
    does: without this a client whose flags never change would get 304s forever and keep an expired URL.
    """
    if not settings.PUSH_CHANNEL_URL or not etag.endswith('"'):
        return etag
    return f'{etag[:-1]}.{token.expiry(now)}"'


def untagged(settings: Settings, if_none_match: str | None, *, now: float) -> str | None:
    """An If-None-Match with only the tags of the current token's expiry, without it (older tokens never match)."""
    if not settings.PUSH_CHANNEL_URL or if_none_match is None:
        return if_none_match
    suffix = f'.{token.expiry(now)}"'
    tags = [tag.strip() for tag in if_none_match.split(",")]
    kept = [tag.removesuffix(suffix) + '"' for tag in tags if tag.endswith(suffix)]
    return ", ".join(kept + [tag for tag in tags if tag == "*"]) or None


def channel_url(settings: Settings, *, now: float) -> str:
    url = settings.PUSH_CHANNEL_URL or ""
    query = {
        "channel": channel(settings.FLAGS_ENV),
        "host": settings.PUSH_CHANNEL_HOST or urlsplit(url).netloc,
        "token": token.mint(token_secret(settings), settings.FLAGS_ENV, now=now),
    }
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}"


def event_streams(settings: Settings, revision: int, *, now: float) -> list[dict[str, Any]]:
    """Where this answer's client listens for changes; none when no stream is served (or its secret is unreadable)."""
    if settings.PUSH_CHANNEL_URL:
        try:
            url = channel_url(settings, now=now)
        except Exception as exc:  # noqa: BLE001 - Secrets Manager or its client failing: answer without a stream
            logger.warning("push channel credential unavailable", error=type(exc).__name__)
            return []
    elif settings.EVENT_STREAM_URL:
        stream = settings.EVENT_STREAM_URL
        url = f"{stream}{'&' if '?' in stream else '?'}since={revision}"
    else:
        return []
    return [{"type": "sse", "url": url, "inactivityDelaySec": INACTIVITY_DELAY}]
