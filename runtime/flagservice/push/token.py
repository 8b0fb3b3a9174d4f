"""The push channel's credential: short-lived, read-only, bound to one environment (CONTRACT.md section 5).

Browsers cannot set headers on a WebSocket, so the credential travels in the advertised URL. It is
`v1.<expiry>.<mac>`: the expiry in unix seconds and an HMAC-SHA256 of the environment and expiry under a
secret shared only by the flag function and the channel's authorizer (never the admin credential). It
grants connect and subscribe, never publish (the authorizer refuses publish whatever the token).

Expiries are rounded up to a BUCKET_SECONDS boundary so that every answer within one bucket advertises the
same URL: the web provider keeps an open connection while the advertised URL does not change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math

VERSION = "v1"
LIFETIME_SECONDS = 3600  # a token is valid at least this long after it was minted
BUCKET_SECONDS = 900
MAX_TOKEN_LENGTH = 128


def _mac(secret: bytes, environment: str, expiry: int) -> str:
    digest = hmac.new(secret, f"{VERSION}.{environment}.{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def expiry(now: float) -> int:
    """When a token minted now expires: the bucket boundary past now + LIFETIME_SECONDS."""
    return math.ceil((now + LIFETIME_SECONDS) / BUCKET_SECONDS) * BUCKET_SECONDS


def mint(secret: bytes, environment: str, *, now: float) -> str:
    """A token for `environment`, valid from now until expiry(now)."""
    until = expiry(now)
    return f"{VERSION}.{until}.{_mac(secret, environment, until)}"


def seconds_left(secret: bytes, environment: str, token: object, *, now: float) -> int:
    """How long `token` stays valid for `environment` (0: invalid, expired, or not a token at all)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return 0
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION or not (parts[1].isascii() and parts[1].isdigit()) or len(parts[1]) > 12:
        return 0
    expiry = int(parts[1])
    if not hmac.compare_digest(parts[2].encode(), _mac(secret, environment, expiry).encode()):
        return 0
    return max(0, math.floor(expiry - now))
