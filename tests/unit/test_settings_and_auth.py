"""Settings validation and admin authentication, through the handler where users see them."""

from __future__ import annotations

import pytest

from flagservice.service import FlagService
from flagservice.settings import Settings, SettingsError, load_settings
from tests.apigw import BEARER, call

BASE = {"REDIS_URL": "redis://127.0.0.1:6380/0", "DATABASE_URL": "postgresql://u@127.0.0.1:5433/db"}


def test_defaults_follow_the_contract() -> None:
    settings = load_settings(BASE)
    assert (settings.FLAGS_ENV, settings.CACHE_TTL_SECONDS, settings.STALE_MAX_AGE_SECONDS) == ("dev", 300, 86400)
    assert (settings.NEGATIVE_TTL_SECONDS, settings.L1_MAX_AGE_MS, settings.REDIS_MAX_CONNECTIONS) == (30, 1000, 10)
    assert settings.REDIS_CLUSTER_MODE is False


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"CACHE_TTL_SECONDS": "soon"}, "CACHE_TTL_SECONDS"),
        ({"ADMIN_TOKEN": "short"}, "ADMIN_TOKEN"),
        ({"DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:db"}, "DB_SECRET_ARN"),
        ({"REDIS_MAX_CONNECTIONS": "0"}, "REDIS_MAX_CONNECTIONS"),
        ({"CORS_ALLOWED_ORIGINS": "page.example"}, "CORS_ALLOWED_ORIGINS"),
        ({"EVENT_STREAM_URL": "not a url"}, "EVENT_STREAM_URL"),
        ({"REDIS_CLUSTER_MODE": "cluster"}, "REDIS_CLUSTER_MODE"),
    ],
)
def test_an_invalid_setting_is_one_line_naming_the_variable(override: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings({**BASE, **override})
    assert variable in str(error.value) and "\n" not in str(error.value)


def test_missing_redis_url_is_named() -> None:
    with pytest.raises(SettingsError, match="REDIS_URL"):
        load_settings({"DATABASE_URL": BASE["DATABASE_URL"]})


def test_settings_fields_are_the_contract_variables() -> None:
    assert set(Settings.model_fields) == {
        "FLAGS_ENV",
        "REDIS_URL",
        "REDIS_AUTH_SECRET_ARN",
        "REDIS_IAM_USER",
        "REDIS_CACHE_NAME",
        "DATABASE_URL",
        "DB_SECRET_ARN",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "CACHE_TTL_SECONDS",
        "STALE_MAX_AGE_SECONDS",
        "NEGATIVE_TTL_SECONDS",
        "L1_MAX_AGE_MS",
        "REDIS_MAX_CONNECTIONS",
        "ADMIN_TOKEN",
        "DB_PREPARED_STATEMENTS",
        "CORS_ALLOWED_ORIGINS",
        "EVENT_STREAM_URL",
        "CONSOLE_USER_POOL_ID",
        "CONSOLE_CLIENT_ID",
        "CONSOLE_IDENTITY_POOL_ID",
        "CONSOLE_SIGN_IN_URL",
        "REDIS_CLUSTER_MODE",
        "REDIS_SECONDARY_URL",
        "REDIS_SECONDARY_CACHE_NAME",
        "REDIS_SECONDARY_CLUSTER_MODE",
        "REDIS_READ_FROM",
        "PUSH_CHANNEL_URL",
        "PUSH_CHANNEL_HOST",
        "PUSH_TOKEN_SECRET",
        "PUSH_TOKEN_SECRET_ARN",
        "PUSH_PUBLISHER_FUNCTION",
        "PUSH_PUBLISH_URL",
    }


def test_lambda_with_invalid_settings_answers_500_general_and_logs_the_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", "-1")
    answer = call("GET", "/flags/checkout")
    assert (answer.status, answer.json["errorCode"]) == (500, "GENERAL")
    assert "CACHE_TTL_SECONDS" not in answer.body
    assert "invalid setting CACHE_TTL_SECONDS" in caplog.text


def test_deployed_admin_uses_the_iam_principal_and_never_a_bearer_token(
    monkeypatch: pytest.MonkeyPatch, fake_service: FlagService
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "flags-prod")
    body = {"key": "k", "enabled": True}
    with_bearer_only = call("POST", "/admin/flags", body=body, headers=BEARER)
    signed = call("POST", "/admin/flags", body=body, user_arn="arn:aws:iam::123456789012:user/oncall")
    history = call("GET", "/admin/flags/k/history", user_arn="arn:aws:iam::123456789012:user/oncall").json
    assert (with_bearer_only.status, with_bearer_only.json["errorCode"]) == (403, "FORBIDDEN")
    assert signed.status == 201
    assert history["history"][0]["actor"] == "arn:aws:iam::123456789012:user/oncall"


def test_the_admin_token_is_never_logged(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], fake_service: FlagService
) -> None:
    caplog.set_level("DEBUG")
    call("POST", "/admin/flags", body={"key": "k", "enabled": True}, headers=BEARER)
    call("POST", "/admin/flags", body={"key": "k", "enabled": True}, headers={"Authorization": "Bearer guess"})
    output = capsys.readouterr()
    assert "flag audit" in caplog.text
    assert BEARER["Authorization"].split()[1] not in output.out + output.err + caplog.text
