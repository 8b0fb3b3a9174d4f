"""Where the database is: DATABASE_URL locally, a Secrets Manager secret (RDS's JSON shape) deployed."""

from __future__ import annotations

from psycopg.conninfo import make_conninfo


def database_conninfo(*, database_url: str | None, secret_arn: str | None) -> str:
    """A libpq connection string from exactly one of the two sources."""
    if database_url:
        return database_url
    if not secret_arn:
        raise ValueError("one of DATABASE_URL and DB_SECRET_ARN is required")
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(secret_arn, transform="json", max_age=300)
    assert isinstance(secret, dict)
    return make_conninfo(
        host=secret["host"],
        port=str(secret.get("port", 5432)),
        user=secret["username"],
        password=secret["password"],
        dbname=secret.get("dbname", "postgres"),
        sslmode="require",
    )
