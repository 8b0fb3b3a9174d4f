"""Where the database is: DATABASE_URL locally, a Secrets Manager secret (RDS's JSON shape) deployed.

Every secret the service reads (the database's, the cache's AUTH token) goes through one Secrets
Manager client with short timeouts and one retry at most: `warm()` runs these calls in Lambda's
init phase, which must stay time-boxed. The SDK's defaults (60 s connect, 60 s read, 5 attempts)
would let an unanswering endpoint hold a cold start for minutes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from psycopg.conninfo import make_conninfo

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

SECRETS_CONNECT_TIMEOUT_SECONDS = 0.5
SECRETS_READ_TIMEOUT_SECONDS = 1.0
SECRETS_TOTAL_ATTEMPTS = 2  # the first call and one retry
SECRET_MAX_AGE_SECONDS = 300


@functools.lru_cache(maxsize=1)
def secrets_provider() -> SecretsProvider:
    """The container's one Secrets Manager provider (Powertools caches each value for SECRET_MAX_AGE_SECONDS)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from botocore.config import Config  # type: ignore[import-untyped]  # botocore ships no type hints

    config = Config(
        connect_timeout=SECRETS_CONNECT_TIMEOUT_SECONDS,
        read_timeout=SECRETS_READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "total_max_attempts": SECRETS_TOTAL_ATTEMPTS},
    )
    return SecretsProvider(boto_config=config)


def read_secret(arn: str, *, transform: Any = None) -> Any:
    """A secret's value (parsed when `transform="json"`), within the client's time limits."""
    return secrets_provider().get(arn, max_age=SECRET_MAX_AGE_SECONDS, transform=transform)


def database_conninfo(*, database_url: str | None, secret_arn: str | None) -> str:
    """A libpq connection string from exactly one of the two sources."""
    if database_url:
        return database_url
    if not secret_arn:
        raise ValueError("one of DATABASE_URL and DB_SECRET_ARN is required")
    secret = read_secret(secret_arn, transform="json")
    assert isinstance(secret, dict)
    return make_conninfo(
        host=secret["host"],
        port=str(secret.get("port", 5432)),
        user=secret["username"],
        password=secret["password"],
        dbname=secret.get("dbname", "postgres"),
        sslmode="require",
    )
