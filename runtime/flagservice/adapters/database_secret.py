"""Where the database is and how to sign in: DATABASE_URL locally; deployed, DB_HOST and friends plus a secret.

Deployed, RDS manages and rotates the master password itself (ManageMasterUserPassword): its secret
holds only `username` and `password`, so the address comes from DB_HOST, DB_PORT, DB_NAME and DB_USER,
which the stack sets (from the stateful stack's SSM parameters). A secret in RDS's older JSON shape
(with host, port and dbname) still works: the variables win where both say something.

Every secret the service reads (the database's, the cache's AUTH token) goes through one Secrets
Manager client with short timeouts and one retry at most: `warm()` runs these calls in Lambda's
init phase, which must stay time-boxed. The SDK's defaults (60 s connect, 60 s read, 5 attempts)
would let an unanswering endpoint hold a cold start for minutes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


def read_secret(arn: str, *, transform: Any = None, fresh: bool = False) -> Any:
    """A secret's value (parsed when `transform="json"`), within the client's time limits; `fresh`
    skips the cached copy (after a rotation)."""
    return secrets_provider().get(arn, max_age=SECRET_MAX_AGE_SECONDS, transform=transform, force_fetch=fresh)


@dataclass(frozen=True)
class DatabaseAddress:
    """DB_HOST, DB_PORT, DB_NAME and DB_USER; any may be unset."""

    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    user: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DatabaseAddress:
        port = environ.get("DB_PORT") or None
        return cls(
            host=environ.get("DB_HOST") or None,
            port=int(port) if port else None,
            dbname=environ.get("DB_NAME") or None,
            user=environ.get("DB_USER") or None,
        )


def _read_secret(secret_arn: str, *, fresh: bool) -> dict[str, Any]:
    secret = read_secret(secret_arn, transform="json", fresh=fresh)
    assert isinstance(secret, dict)
    return secret


def database_conninfo(
    *,
    database_url: str | None,
    secret_arn: str | None,
    address: DatabaseAddress = DatabaseAddress(),
    fresh: bool = False,
) -> str:
    """A libpq connection string from DATABASE_URL, or from the address and the secret's password.

    Without a secret (DB_HOST alone, as `sam local invoke` against `make dev`'s servers), no password is
    sent and TLS is only preferred; with one, TLS is required. `fresh` skips the secret's cached copy.
    """
    if database_url:
        return database_url
    if not secret_arn and not address.host:
        raise ValueError("one of DATABASE_URL and DB_SECRET_ARN is required")
    secret = _read_secret(secret_arn, fresh=fresh) if secret_arn else {}
    options: dict[str, Any] = {
        "host": address.host or secret["host"],
        "port": str(address.port or secret.get("port", 5432)),
        "user": address.user or secret.get("username", "postgres"),
        "dbname": address.dbname or secret.get("dbname", "postgres"),
        "sslmode": "require" if secret_arn else "prefer",
    }
    if secret_arn:
        options["password"] = secret["password"]
    return make_conninfo(**options)


def database_conninfo_source(
    *, database_url: str | None, secret_arn: str | None, address: DatabaseAddress = DatabaseAddress()
) -> str | Callable[[], str]:
    """What the connection pool connects with: DATABASE_URL itself, or a conninfo read anew per connection.

    RDS rotates the password under running containers. An open connection stays signed in, and a
    container opens a new one rarely (a cold start, a broken connection; at most once a second while the
    database is down, behind the repository's breaker), so each new connection reads the secret afresh
    instead of trusting a copy read at cold start: the first connection after a rotation already signs
    in with the new password.
    """
    if database_url:
        return database_url
    return lambda: database_conninfo(database_url=None, secret_arn=secret_arn, address=address, fresh=True)
