"""Cache credentials: IAM tokens as ElastiCache expects them, secrets read from Secrets Manager (moto),
and credentials forgotten when the server refuses them. The drill against a real Redis whose password
changes under load is tests/integration/test_credential_rotation.py.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth
import botocore.session
import pytest
import redis
from botocore.credentials import Credentials
from botocore.model import ServiceId
from botocore.signers import RequestSigner

from flagservice import wiring
from flagservice.adapters import redis_credentials
from flagservice.adapters.redis_credentials import RefreshingCredentials, iam_token
from flagservice.settings import load_settings
from tests.moto_aws import REGION, aws  # noqa: F401 - fixture

KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
NOW = datetime.datetime(2026, 3, 14, 9, 26, 53, tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Fetches:
    """A credential source that hands out password-1, password-2, ... and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> tuple[str]:
        self.calls += 1
        return (f"password-{self.calls}",)


class RefusingConnection:
    """Stands in for a redis-py connection whose AUTH the server refuses (WRONGPASS)."""

    def on_connect(self) -> None:
        raise redis.AuthenticationError("WRONGPASS invalid username-password pair or user is disabled.")


def reference_token(*, user: str, cache_name: str, region: str) -> str:
    """The token as redis-py's documented ElastiCache IAM provider builds it (botocore's RequestSigner)."""
    session = botocore.session.get_session()
    emitter = session.get_component("event_emitter")
    signer = RequestSigner(ServiceId("elasticache"), region, "elasticache", "v4", KEYS, emitter)
    url = f"https://{cache_name}/?Action=connect&User={user}"
    request = {"method": "GET", "url": url, "body": {}, "headers": {}, "context": {}}
    signed = signer.generate_presigned_url(request, operation_name="connect", expires_in=900, region_name=region)
    return str(signed).removeprefix("https://")


def test_credentials_are_fetched_once_and_reused_until_they_are_old() -> None:
    clock, fetches = Clock(), Fetches()
    credentials = RefreshingCredentials(fetches, max_age=60, clock=clock)

    first = credentials.get_credentials()
    clock.now = 59
    again = credentials.get_credentials()
    clock.now = 60
    later = credentials.get_credentials()

    assert (first, again, later) == (("password-1",), ("password-1",), ("password-2",))


def test_a_refused_password_is_forgotten_and_the_refusal_passes_through_to_the_connect_retry() -> None:
    fetches = Fetches()
    credentials = RefreshingCredentials(fetches, max_age=3600)
    assert credentials.get_credentials() == ("password-1",)

    with pytest.raises(redis.AuthenticationError):
        credentials.on_connect(RefusingConnection())  # type: ignore[arg-type]

    assert credentials.get_credentials() == ("password-2",)
    assert credentials.refusals == 1


def test_the_pool_options_install_the_provider_and_its_connect_hook() -> None:
    credentials = RefreshingCredentials(Fetches(), max_age=1)

    options = credentials.connection_options()

    assert options == {"credential_provider": credentials, "redis_connect_func": credentials.on_connect}


def test_an_iam_token_is_the_presigned_connect_request_elasticache_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW)

    token = iam_token(user="flags-prod-service", cache_name="flags-prod-cache-1", region="eu-west-1", credentials=KEYS)

    assert token == reference_token(user="flags-prod-service", cache_name="flags-prod-cache-1", region="eu-west-1")
    parts = urlsplit("//" + token)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert parts.netloc == "flags-prod-cache-1" and not token.startswith("http")
    assert (query["Action"], query["User"], query["X-Amz-Expires"]) == ("connect", "flags-prod-service", "900")
    assert query["X-Amz-Credential"] == "AKIDEXAMPLE/20260314/eu-west-1/elasticache/aws4_request"


@pytest.mark.usefixtures("aws")
def test_iam_credentials_sign_with_the_role_of_the_process_for_the_iam_user() -> None:
    credentials = redis_credentials.iam_credentials(
        user="flags-dev-service", cache_name="flags-dev-cache-1", region=REGION
    )

    user, token = credentials.get_credentials()  # type: ignore[misc]

    assert user == "flags-dev-service"
    assert token.startswith("flags-dev-cache-1/?Action=connect&User=flags-dev-service&")
    assert f"%2F{REGION}%2Felasticache%2Faws4_request" in token


@pytest.mark.usefixtures("aws")
def test_a_secret_held_token_is_read_again_past_any_cache_after_a_refusal() -> None:
    client: Any = boto3.client("secretsmanager", region_name=REGION)
    arn = client.create_secret(Name="flags/auth-token", SecretString="token-one")["ARN"]
    credentials = redis_credentials.secret_credentials(arn)
    assert credentials.get_credentials() == ("token-one",)

    client.put_secret_value(SecretId=arn, SecretString="token-two")  # rotated: AWSCURRENT moves
    assert credentials.get_credentials() == ("token-one",)  # still cached: nothing refused it yet
    with pytest.raises(redis.AuthenticationError):
        credentials.on_connect(RefusingConnection())  # type: ignore[arg-type]

    assert credentials.get_credentials() == ("token-two",)


@pytest.mark.usefixtures("aws")
def test_the_container_signs_in_with_iam_when_the_stack_names_a_user_and_a_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(
        {
            "REDIS_URL": "rediss://master.flags-dev-cache-1.abc123.euc1.cache.amazonaws.com:6379",
            "REDIS_IAM_USER": "flags-dev-service",
            "REDIS_CACHE_NAME": "flags-dev-cache-1",
            "DB_SECRET_ARN": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rds!db-1",
        }
    )

    credentials = wiring.cache_credentials(settings)

    assert credentials is not None and credentials.get_credentials()[0] == "flags-dev-service"


def test_locally_there_are_no_cache_credentials() -> None:
    settings = load_settings({"REDIS_URL": "redis://127.0.0.1:6380/0", "DATABASE_URL": "postgresql://u@h/db"})

    assert wiring.cache_credentials(settings) is None


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"REDIS_IAM_USER": "flags-dev-service"}, "REDIS_CACHE_NAME"),
        ({"REDIS_IAM_USER": "u", "REDIS_CACHE_NAME": "c", "REDIS_AUTH_SECRET_ARN": "arn"}, "REDIS_AUTH_SECRET_ARN"),
        ({"REDIS_IAM_USER": "u", "REDIS_CACHE_NAME": "c", "REDIS_URL": "redis://h:6379"}, "rediss://"),
    ],
)
def test_iam_settings_that_cannot_work_are_refused_naming_the_variables(override: dict[str, str], named: str) -> None:
    from flagservice.settings import SettingsError

    base = {"REDIS_URL": "rediss://h:6379", "DATABASE_URL": "postgresql://u@h/db"}
    with pytest.raises(SettingsError, match=named):
        load_settings({**base, **override})
