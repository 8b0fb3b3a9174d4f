"""Deployed console sign-in, attacked on the runtime side: settings that half configure it, a page fed hostile
settings, request contexts that claim a person where none signed in.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flagservice.console.routes import page_asset
from flagservice.service import FlagService
from flagservice.settings import SettingsError, load_settings
from tests.apigw import BEARER, call
from tests.unit.test_console_sign_in import CONSOLE_SETTINGS, ROLE_ARN, cognito_identity, written_by

BASE = {"REDIS_URL": "redis://127.0.0.1:6380/0", "DATABASE_URL": "postgresql://u@127.0.0.1:5433/db"}


@pytest.mark.parametrize("left_out", sorted(CONSOLE_SETTINGS))
def test_a_partial_console_sign_in_refuses_to_start_and_names_the_missing_variable(left_out: str) -> None:
    given = {name: value for name, value in CONSOLE_SETTINGS.items() if name != left_out}
    with pytest.raises(SettingsError) as refused:
        load_settings({**BASE, **given})
    assert str(refused.value).startswith(f"invalid settings: Value error, {left_out} missing:"), str(refused.value)


def test_only_one_console_setting_names_the_other_three() -> None:
    others = "CONSOLE_USER_POOL_ID and CONSOLE_IDENTITY_POOL_ID and CONSOLE_SIGN_IN_URL missing"
    with pytest.raises(SettingsError, match=others):
        load_settings({**BASE, "CONSOLE_CLIENT_ID": CONSOLE_SETTINGS["CONSOLE_CLIENT_ID"]})


def test_the_page_escapes_sign_in_data_even_if_the_settings_patterns_were_to_let_markup_through() -> None:
    hostile = {"mode": "cognito", "signInUrl": "\"><img src=x onerror=alert(1)><script>alert(2)</script>'&"}
    body = page_asset(json.dumps(hostile)).body
    opening = body[body.index("<body") : body.index(">", body.index("<body")) + 1]
    assert "<img" not in body and "<script>alert" not in body
    assert opening.count('"') == 2  # the attribute's own quotes only


@pytest.fixture
def local(fake_service: FlagService) -> FlagService:
    return fake_service


def test_locally_a_request_context_claiming_a_signed_in_person_is_not_believed(local: FlagService) -> None:
    claim: dict[str, Any] = {"user_arn": ROLE_ARN, "identity": cognito_identity()}
    body = {"key": "k", "enabled": True}
    assert call("POST", "/admin/flags", body=body, **claim).status == 401  # no token: no write, whoever it claims
    assert call("POST", "/admin/flags", body=body, headers=BEARER, **claim).status == 201
    history = call("GET", "/admin/flags/k/history", headers=BEARER).json["history"]
    assert [entry["actor"] for entry in history] == ["local-admin"]


@pytest.mark.parametrize(
    "provider",
    [
        "x" * 100_000,
        "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz," * 1000,
        "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz,cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz"
        ":CognitoSignIn:\u0667d8e9f00-aaaa-bbbb-cccc-0123456789ab",  # an Arabic-Indic digit: not a Cognito sub
        "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz,cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz"
        ":CognitoSignIn:7D8E9F00-AAAA-BBBB-CCCC-0123456789AB",  # another spelling of someone's sub: not theirs
    ],
)
def test_odd_provider_strings_are_recorded_by_role_and_identity(
    monkeypatch: pytest.MonkeyPatch, local: FlagService, provider: str
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "flags-prod")
    for name, value in CONSOLE_SETTINGS.items():
        monkeypatch.setenv(name, value)
    identity = cognito_identity(provider)
    assert written_by(user_arn=ROLE_ARN, identity=identity) == (201, f"{ROLE_ARN} ({identity['cognitoIdentityId']})")
    assert call("GET", "/console").status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/..%2Fadmin%2Fflags",
        "/console/%2e%2e/flags/checkout",
        "/console/../admin/flags",
        "/console/../flags/checkout",
        "/console/..",
        "/console//app.js",
        "/console/app.js%00",
        "/console/index.html",  # the page only at /console, where its CSP is set
        "/console/routes.py",
        "/console/__init__.py",
        "/console/" + "a" * 100_000,
    ],
)
def test_console_paths_serve_nothing_but_console_assets(local: FlagService, path: str) -> None:
    answer = call("GET", path, query={"q": "<script>" * 1000})
    assert (answer.status, answer.json["errorCode"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH"])
def test_the_console_answers_get_only(local: FlagService, method: str) -> None:
    answer = call(method, "/console")
    assert (answer.status, answer.headers.get("allow")) == (405, "GET")
