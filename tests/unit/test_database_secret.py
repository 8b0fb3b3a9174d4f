"""Database sign-in deployed: RDS's managed secret (username and password only) read from Secrets Manager
(moto), the address from the stack's variables, and a rotated password picked up by the next connection.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from psycopg.conninfo import conninfo_to_dict

from flagservice import wiring
from flagservice.adapters.database_secret import DatabaseAddress, database_conninfo, database_conninfo_source
from flagservice.settings import load_settings
from tests.moto_aws import REGION, aws  # noqa: F401 - fixture

HOST = "flags.abc.eu-central-1.rds.amazonaws.com"
ADDRESS = DatabaseAddress(host=HOST, port=5432, dbname="flags", user="flags_admin")


def managed_secret(password: str) -> dict[str, str]:
    """What RDS writes into the secret it manages (ManageMasterUserPassword): no host, no dbname."""
    return {"username": "flags_admin", "password": password}


def create_secret(value: dict[str, str]) -> str:
    client: Any = boto3.client("secretsmanager", region_name=REGION)
    arn: str = client.create_secret(Name="rds!db-0123", SecretString=json.dumps(value))["ARN"]
    return arn


def rotate(arn: str, value: dict[str, str]) -> None:
    client: Any = boto3.client("secretsmanager", region_name=REGION)
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(value))


@pytest.mark.usefixtures("aws")
def test_the_managed_secret_signs_in_at_the_address_the_stack_gives_with_tls_required() -> None:
    arn = create_secret(managed_secret("first-password"))

    options = conninfo_to_dict(database_conninfo(database_url=None, secret_arn=arn, address=ADDRESS))

    assert options == {
        "host": ADDRESS.host,
        "port": "5432",
        "user": "flags_admin",
        "dbname": "flags",
        "password": "first-password",
        "sslmode": "require",
    }


@pytest.mark.usefixtures("aws")
def test_a_secret_in_rds_older_shape_still_works_and_the_variables_win_where_both_say() -> None:
    arn = create_secret({**managed_secret("pw"), "host": "old-host", "port": "5432", "dbname": "flags"})

    from_secret = conninfo_to_dict(database_conninfo(database_url=None, secret_arn=arn))
    proxied = conninfo_to_dict(
        database_conninfo(database_url=None, secret_arn=arn, address=DatabaseAddress(host="proxy-host"))
    )

    assert (from_secret["host"], from_secret["dbname"]) == ("old-host", "flags")
    assert proxied["host"] == "proxy-host" and proxied["password"] == "pw"


@pytest.mark.usefixtures("aws")
def test_each_new_connection_reads_the_current_password_after_a_rotation() -> None:
    arn = create_secret(managed_secret("before-rotation"))
    source = database_conninfo_source(database_url=None, secret_arn=arn, address=ADDRESS)
    assert callable(source)
    assert conninfo_to_dict(source())["password"] == "before-rotation"

    rotate(arn, managed_secret("after-rotation"))

    assert conninfo_to_dict(source())["password"] == "after-rotation"


def test_a_database_url_is_used_as_it_is() -> None:
    url = "postgresql://postgres@127.0.0.1:5433/postgres"

    assert database_conninfo_source(database_url=url, secret_arn=None) == url


def test_a_host_without_a_secret_signs_in_without_a_password_as_local_servers_allow() -> None:
    local = DatabaseAddress(host="127.0.0.1", port=15432, dbname="postgres", user="postgres")

    options = conninfo_to_dict(database_conninfo(database_url=None, secret_arn=None, address=local))

    assert "password" not in options and options["sslmode"] == "prefer" and options["port"] == "15432"


def test_the_address_variables_are_read_from_the_environment() -> None:
    environ = {"DB_HOST": "h", "DB_PORT": "6543", "DB_NAME": "flags", "DB_USER": "u", "DB_SECRET_ARN": "arn"}

    assert DatabaseAddress.from_environ(environ) == DatabaseAddress("h", 6543, "flags", "u")
    assert DatabaseAddress.from_environ({"DB_HOST": ""}) == DatabaseAddress()  # empty counts as unset


@pytest.mark.usefixtures("aws")
def test_the_deployed_settings_give_the_repository_a_per_connection_source(monkeypatch: pytest.MonkeyPatch) -> None:
    arn = create_secret(managed_secret("pw"))
    settings = load_settings(
        {"REDIS_URL": "rediss://h:6379", "DB_SECRET_ARN": arn, "DB_HOST": "db-host", "DB_NAME": "flags"}
    )
    given: list[Any] = []
    monkeypatch.setattr(wiring.PostgresFlagRepository, "connect", lambda conninfo, **_: given.append(conninfo))

    wiring.build_repository(settings)

    (source,) = given
    assert conninfo_to_dict(source()) | {"password": "-"} == {
        "host": "db-host",
        "port": "5432",
        "user": "flags_admin",
        "dbname": "flags",
        "password": "-",
        "sslmode": "require",
    }


@pytest.mark.parametrize(
    "environ",
    [
        {"DATABASE_URL": "postgresql://u@h/db", "DB_HOST": "h"},
        {"DATABASE_URL": "postgresql://u@h/db", "DB_SECRET_ARN": "arn"},
        {},
    ],
)
def test_exactly_one_database_source_is_accepted(environ: dict[str, str]) -> None:
    from flagservice.settings import SettingsError

    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings({"REDIS_URL": "redis://h:6379", **environ})
