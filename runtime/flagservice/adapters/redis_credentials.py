"""Cache credentials that may change under a running container, re-read when the server refuses them.

Deployed, the cache authenticates with IAM (ElastiCache users with IAM authentication): the password
is a SigV4-presigned `connect` request for the replication group, computed locally (no network call)
and valid 15 minutes; there is no secret to rotate. A secret-held AUTH token (REDIS_AUTH_SECRET_ARN)
is read from Secrets Manager instead.

redis-py asks `get_credentials()` each time it opens a connection (open connections stay signed in
when the password changes). The answer is cached for `max_age`. When the server refuses it (WRONGPASS,
NOAUTH, "invalid password": redis-py's AuthenticationError), `on_connect` forgets it and lets the error
through; redis-py's connect retry then opens a new connection, which signs in with fresh credentials.
So a token or secret that changed is picked up on the first refusal, not after `max_age`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import redis
from redis.connection import AbstractConnection

Credentials = tuple[str] | tuple[str, str]
IAM_TOKEN_SECONDS = 900  # ElastiCache accepts a token for 15 minutes after it was signed
IAM_TOKEN_REUSE_SECONDS = 600  # a cached token always has 5 minutes left when a connection uses it
SECRET_REUSE_SECONDS = 300


class RefreshingCredentials(redis.CredentialProvider):
    """A redis-py credential provider that caches `fetch()` for `max_age` and forgets it on an auth error."""

    def __init__(
        self,
        fetch: Callable[[], Credentials],
        *,
        max_age: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: Credentials | None = None
        self._fetched_at = 0.0
        self.refusals = 0  # how often the server refused cached credentials (tests, logs)

    def get_credentials(self) -> Credentials:
        with self._lock:
            if self._cached is None or self._clock() - self._fetched_at >= self._max_age:
                self._cached, self._fetched_at = self._fetch(), self._clock()
            return self._cached

    def forget(self) -> None:
        with self._lock:
            self._cached = None
            self.refusals += 1

    def on_connect(self, connection: AbstractConnection) -> None:
        """redis-py's `redis_connect_func`: the usual handshake, forgetting the credentials it refuses."""
        try:
            connection.on_connect()
        except redis.AuthenticationError:
            self.forget()
            raise

    def connection_options(self) -> dict[str, Any]:
        """Keyword arguments for a redis-py connection pool."""
        return {"credential_provider": self, "redis_connect_func": self.on_connect}


def iam_token(*, user: str, cache_name: str, region: str, credentials: Any) -> str:
    """An ElastiCache IAM auth token: a presigned `GET http://<cache>/?Action=connect&User=<user>`, no scheme."""
    from botocore.auth import SigV4QueryAuth  # type: ignore[import-untyped]
    from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]

    request = AWSRequest(method="GET", url=f"http://{cache_name}/?{urlencode({'Action': 'connect', 'User': user})}")
    SigV4QueryAuth(credentials, "elasticache", region, expires=IAM_TOKEN_SECONDS).add_auth(request)
    return str(request.url).removeprefix("http://")


def iam_credentials(*, user: str, cache_name: str, region: str) -> RefreshingCredentials:
    """Tokens signed with the function's role (the botocore session resolves and refreshes its keys)."""
    import botocore.session  # type: ignore[import-untyped]

    session = botocore.session.get_session()

    def fetch() -> Credentials:
        keys = session.get_credentials().get_frozen_credentials()
        return user, iam_token(user=user, cache_name=cache_name, region=region, credentials=keys)

    return RefreshingCredentials(fetch, max_age=IAM_TOKEN_REUSE_SECONDS)


def secret_credentials(secret_arn: str) -> RefreshingCredentials:
    """The whole secret string is the AUTH token; a refusal reads the secret again, past any cache
    (through the one time-boxed Secrets Manager client, database_secret.read_secret)."""
    from flagservice.adapters.database_secret import read_secret

    def fetch() -> Credentials:
        return (str(read_secret(secret_arn, fresh=True)),)

    return RefreshingCredentials(fetch, max_age=SECRET_REUSE_SECONDS)
