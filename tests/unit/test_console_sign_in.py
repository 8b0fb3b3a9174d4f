"""Deployed console sign-in, runtime side: the actor of a Cognito identity, and the page's sign-in data.

The request contexts below have the shape API Gateway documents for IAM-authorized REST proxy calls made
with credentials of a Cognito identity pool (`$context.identity.cognito*`, `userArn`): the role session
is `CognitoIdentityCredentials`, the provider string names the user pool twice, the second time with the
user's `sub` after `:CognitoSignIn:`.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from flagservice.auth import console_person
from flagservice.service import FlagService
from tests.apigw import BEARER, call

REGION = "eu-west-1"
POOL = f"{REGION}_AbC123xyz"
IDENTITY_POOL = f"{REGION}:0f0e0d0c-1111-2222-3333-444455556666"
SUB = "7d8e9f00-aaaa-bbbb-cccc-0123456789ab"
ROLE_ARN = "arn:aws:sts::123456789012:assumed-role/flagservice-prod-flag-editors/CognitoIdentityCredentials"
ISSUER = f"cognito-idp.{REGION}.amazonaws.com/{POOL}"
CONSOLE_SETTINGS = {
    "CONSOLE_USER_POOL_ID": POOL,
    "CONSOLE_CLIENT_ID": "4abc5def6ghi7jkl8mno9pqr0s",
    "CONSOLE_IDENTITY_POOL_ID": IDENTITY_POOL,
    "CONSOLE_SIGN_IN_URL": f"https://flags-prod-123456789012.auth.{REGION}.amazoncognito.com",
}


def cognito_identity(provider: str = f"{ISSUER},{ISSUER}:CognitoSignIn:{SUB}", **extra: Any) -> dict[str, Any]:
    return {
        "cognitoIdentityPoolId": IDENTITY_POOL,
        "cognitoIdentityId": f"{REGION}:9a9b9c9d-0000-1111-2222-333344445555",
        "cognitoAuthenticationType": "authenticated",
        "cognitoAuthenticationProvider": provider,
        "user": "AROAEXAMPLEROLEID:CognitoIdentityCredentials",
        "accountId": "123456789012",
        **extra,
    }


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch, fake_service: FlagService) -> FlagService:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "flags-prod")
    for name, value in CONSOLE_SETTINGS.items():
        monkeypatch.setenv(name, value)
    return fake_service


def written_by(**kwargs: Any) -> tuple[int, str | None]:
    """Create a flag as this caller; its status and the actor its history records."""
    answer = call("POST", "/admin/flags", body={"key": "k", "enabled": True}, **kwargs)
    if answer.status >= 300:
        return answer.status, None
    history = call("GET", "/admin/flags/k/history", user_arn="arn:aws:iam::123456789012:user/reader").json
    return answer.status, history["history"][0]["actor"]


def test_a_person_signed_in_to_the_console_is_the_actor_not_the_shared_group_role(deployed: FlagService) -> None:
    assert written_by(user_arn=ROLE_ARN, identity=cognito_identity()) == (201, f"cognito:{POOL}/{SUB}")


def test_iam_users_and_roles_keep_their_arn_and_headers_never_name_the_actor(deployed: FlagService) -> None:
    forged = {"X-Cognito-Authentication-Provider": f"{ISSUER},{ISSUER}:CognitoSignIn:{SUB}", **BEARER}
    status, actor = written_by(user_arn="arn:aws:iam::123456789012:user/oncall", headers=forged)
    assert (status, actor) == (201, "arn:aws:iam::123456789012:user/oncall")


@pytest.mark.parametrize(
    "provider",
    [
        "",
        "garbage",
        f"{ISSUER}:CognitoSignIn:{SUB}",  # the issuer part missing
        f"{ISSUER},{ISSUER}:CognitoSignIn:not-a-sub",
        f"{ISSUER},cognito-idp.{REGION}.amazonaws.com/{REGION}_Other:CognitoSignIn:{SUB}",  # another pool
        f"cognito-idp.{REGION}.amazonaws.com/{REGION}_Other,{ISSUER}:CognitoSignIn:{SUB}",
        f"{ISSUER},{ISSUER}:CognitoSignIn:{SUB}:extra",
        f"accounts.google.com,{ISSUER}:CognitoSignIn:{SUB}",
        f"{ISSUER},{ISSUER}:CognitoSignIn:{SUB}\n",
    ],
)
def test_an_identity_not_of_our_user_pool_is_recorded_by_role_and_identity_never_as_a_person(
    deployed: FlagService, provider: str
) -> None:
    identity = cognito_identity(provider)
    status, actor = written_by(user_arn=ROLE_ARN, identity=identity)
    assert (status, actor) == (201, f"{ROLE_ARN} ({identity['cognitoIdentityId']})")
    assert console_person(provider, POOL) is None


def test_an_identity_of_another_identity_pool_is_never_recorded_as_a_person_of_ours(deployed: FlagService) -> None:
    identity = cognito_identity(cognitoIdentityPoolId=f"{REGION}:99999999-1111-2222-3333-444455556666")
    assert written_by(user_arn=ROLE_ARN, identity=identity) == (201, f"{ROLE_ARN} ({identity['cognitoIdentityId']})")


def test_a_guest_identity_may_not_write(deployed: FlagService) -> None:
    identity = cognito_identity(cognitoAuthenticationType="unauthenticated", cognitoAuthenticationProvider=None)
    answer = call("POST", "/admin/flags", body={"key": "k", "enabled": True}, user_arn=ROLE_ARN, identity=identity)
    assert (answer.status, answer.json["errorCode"]) == (403, "FORBIDDEN")


def test_without_a_configured_user_pool_no_provider_string_is_trusted() -> None:
    assert console_person(f"{ISSUER},{ISSUER}:CognitoSignIn:{SUB}", None) is None
    assert console_person(f"{ISSUER},{ISSUER}:CognitoSignIn:{SUB}", POOL) == f"cognito:{POOL}/{SUB}"


def page_sign_in(answer_body: str) -> Any:
    found = re.search(r'<body data-sign-in="([^"]*)">', answer_body)
    return json.loads(html.unescape(found.group(1))) if found else None


def test_the_page_is_in_token_mode_by_default_and_carries_the_sign_in_settings_when_deployed(
    monkeypatch: pytest.MonkeyPatch, deployed: FlagService
) -> None:
    answer = call("GET", "/console")
    csp = answer.headers["content-security-policy"]
    assert page_sign_in(answer.body) == {
        "mode": "cognito",
        "region": REGION,
        "userPoolId": POOL,
        "clientId": CONSOLE_SETTINGS["CONSOLE_CLIENT_ID"],
        "identityPoolId": IDENTITY_POOL,
        "signInUrl": CONSOLE_SETTINGS["CONSOLE_SIGN_IN_URL"],
        "identityUrl": f"https://cognito-identity.{REGION}.amazonaws.com/",
    }
    assert f"connect-src 'self' {CONSOLE_SETTINGS['CONSOLE_SIGN_IN_URL']} https://cognito-identity.{REGION}" in csp
    assert "script-src 'self';" in csp

    for name in CONSOLE_SETTINGS:
        monkeypatch.delenv(name)
    from flagservice import wiring

    wiring.reset()
    local = call("GET", "/console")
    assert local.status == 200 and page_sign_in(local.body) is None and "<body>" in local.body
    assert local.headers["etag"] != answer.headers["etag"]


@pytest.mark.parametrize(
    "override",
    [
        {"CONSOLE_CLIENT_ID": ""},  # three of four
        {"CONSOLE_SIGN_IN_URL": "http://flags.auth.eu-west-1.amazoncognito.com"},  # not https
        {"CONSOLE_SIGN_IN_URL": 'https://x.example/"><script>'},
        {"CONSOLE_IDENTITY_POOL_ID": "us-east-1:0f0e0d0c-1111-2222-3333-444455556666"},  # another region
        {"CONSOLE_USER_POOL_ID": 'eu-west-1_"x'},
    ],
)
def test_console_sign_in_settings_are_all_or_nothing_and_well_formed(override: dict[str, str]) -> None:
    from flagservice.settings import SettingsError, load_settings

    base = {"REDIS_URL": "redis://127.0.0.1:6380/0", "DATABASE_URL": "postgresql://u@127.0.0.1:5433/db"}
    with pytest.raises(SettingsError, match="CONSOLE_"):
        load_settings({**base, **CONSOLE_SETTINGS, **override})
