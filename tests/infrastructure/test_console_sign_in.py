"""Deployed console sign-in (CONTRACT.md section 6): the Cognito user pool, hosted UI, groups, identity pool, roles."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Capture, Match, Template

from flagservice.settings import Settings
from stacks.config import EnvironmentConfig
from tests.infrastructure.conftest import function_id, only_id

FLAG_HANDLER = "flagservice.handler.lambda_handler"
POOL = "AWS::Cognito::UserPool"
CLIENT = "AWS::Cognito::UserPoolClient"
GROUP = "AWS::Cognito::UserPoolGroup"
IDENTITY_POOL = "AWS::Cognito::IdentityPool"


def console_url(template: Template) -> dict[str, Any]:
    api = only_id(template, "AWS::ApiGateway::RestApi")
    parts = ["https://", {"Ref": api}, ".execute-api.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}]
    return {"Fn::Join": ["", [*parts, "/v1/console"]]}


def group_role(template: Template, group: str) -> dict[str, Any]:
    role = Capture()
    template.has_resource_properties(GROUP, {"GroupName": group, "RoleArn": {"Fn::GetAtt": [role, "Arn"]}})
    properties: dict[str, Any] = template.find_resources("AWS::IAM::Role")[role.as_string()]["Properties"]
    return properties


def test_one_user_pool_where_only_administrators_create_users_with_strong_passwords_and_mfa(
    service_template: Template,
) -> None:
    service_template.resource_count_is(POOL, 1)
    service_template.has_resource_properties(
        POOL,
        {
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "MfaConfiguration": "ON",
            "EnabledMfas": ["SOFTWARE_TOKEN_MFA"],
            "Policies": {
                "PasswordPolicy": {
                    "MinimumLength": Match.any_value(),
                    "RequireLowercase": True,
                    "RequireUppercase": True,
                    "RequireNumbers": True,
                    "RequireSymbols": True,
                    "TemporaryPasswordValidityDays": 3,
                }
            },
            "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"},
            "UserPoolTier": "PLUS",
        },
    )
    length = Capture()
    service_template.has_resource_properties(POOL, {"Policies": {"PasswordPolicy": {"MinimumLength": length}}})
    assert length.as_number() >= 14
    service_template.resource_count_is("AWS::Cognito::UserPoolDomain", 1)


def test_the_user_pool_is_protected_where_the_environment_keeps_its_data(
    service_template: Template, config: EnvironmentConfig
) -> None:
    keep = config.resource_removal_policy == cdk.RemovalPolicy.RETAIN
    service_template.has_resource(
        POOL,
        {
            "Properties": Match.object_like({"DeletionProtection": "ACTIVE" if keep else "INACTIVE"}),
            "DeletionPolicy": "Retain" if keep else "Delete",
        },
    )


def test_the_console_client_is_public_code_flow_only_and_returns_to_this_apis_console(
    service_template: Template,
) -> None:
    url = console_url(service_template)
    service_template.resource_count_is(CLIENT, 1)
    service_template.has_resource_properties(
        CLIENT,
        {
            "GenerateSecret": False,
            "AllowedOAuthFlows": ["code"],
            "AllowedOAuthFlowsUserPoolClient": True,
            "AllowedOAuthScopes": Match.array_with(["openid"]),
            "SupportedIdentityProviders": ["COGNITO"],
            "CallbackURLs": [url],
            "LogoutURLs": [url],
            "ExplicitAuthFlows": Match.absent(),
            "EnableTokenRevocation": True,
        },
    )


def test_the_identity_pool_takes_no_guests_and_maps_roles_from_the_token_group_or_denies(
    service_template: Template,
) -> None:
    pool, client = only_id(service_template, POOL), only_id(service_template, CLIENT)
    identity_pool = only_id(service_template, IDENTITY_POOL)
    service_template.has_resource_properties(
        IDENTITY_POOL,
        {
            "AllowUnauthenticatedIdentities": False,
            "AllowClassicFlow": False,
            "CognitoIdentityProviders": [
                {
                    "ClientId": {"Ref": client},
                    "ProviderName": {"Fn::GetAtt": [pool, "ProviderName"]},
                    "ServerSideTokenCheck": True,
                }
            ],
        },
    )
    default_role = Capture()
    service_template.has_resource_properties(
        "AWS::Cognito::IdentityPoolRoleAttachment",
        {
            "IdentityPoolId": {"Ref": identity_pool},
            "Roles": {"authenticated": {"Fn::GetAtt": [default_role, "Arn"]}},
        },
    )
    attachment = next(iter(service_template.find_resources("AWS::Cognito::IdentityPoolRoleAttachment").values()))
    (mapping,) = attachment["Properties"]["RoleMappings"].values()
    assert (mapping["Type"], mapping["AmbiguousRoleResolution"]) == ("Token", "Deny")
    assert mapping["IdentityProvider"] == {"Fn::Join": [":", [{"Fn::GetAtt": [pool, "ProviderName"]}, {"Ref": client}]]}
    no_group = service_template.find_resources("AWS::IAM::Role")[default_role.as_string()]["Properties"]
    assert "Policies" not in no_group and "ManagedPolicyArns" not in no_group  # no group: no permission


@pytest.mark.parametrize(("group", "method"), [("flag-editors", "*"), ("flag-viewers", "GET")])
def test_each_group_role_may_invoke_admin_routes_of_this_api_and_stage_only_and_only_for_signed_in_people(
    service_template: Template, group: str, method: str
) -> None:
    role = group_role(service_template, group)
    api = only_id(service_template, "AWS::ApiGateway::RestApi")
    identity_pool = only_id(service_template, IDENTITY_POOL)

    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": [
                    "",
                    [
                        "arn:", {"Ref": "AWS::Partition"}, ":execute-api:", {"Ref": "AWS::Region"}, ":",
                        {"Ref": "AWS::AccountId"}, ":", {"Ref": api}, f"/v1/{method}/admin/*",
                    ],
                ]
            },
        }
    ]  # fmt: skip
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == {
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Effect": "Allow",
        "Principal": {"Federated": "cognito-identity.amazonaws.com"},
        "Condition": {
            "StringEquals": {"cognito-identity.amazonaws.com:aud": {"Ref": identity_pool}},
            "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
        },
    }


def test_someone_in_both_groups_signs_as_an_editor(service_template: Template) -> None:
    groups = {
        g["Properties"]["GroupName"]: g["Properties"]["Precedence"]
        for g in service_template.find_resources(GROUP).values()
    }
    assert set(groups) == {"flag-editors", "flag-viewers"}
    assert groups["flag-editors"] < groups["flag-viewers"]  # Cognito: the lowest precedence is the preferred role


def test_the_function_is_told_the_sign_in_settings_the_runtime_knows(service_template: Template) -> None:
    function = function_id(service_template, FLAG_HANDLER)
    variables = service_template.find_resources("AWS::Lambda::Function")[function]["Properties"]["Environment"][
        "Variables"
    ]
    console = {name: value for name, value in variables.items() if name.startswith("CONSOLE_")}

    assert set(console) <= set(Settings.model_fields)
    assert console["CONSOLE_USER_POOL_ID"] == {"Ref": only_id(service_template, POOL)}
    assert console["CONSOLE_CLIENT_ID"] == {"Ref": only_id(service_template, CLIENT)}
    assert console["CONSOLE_IDENTITY_POOL_ID"] == {"Ref": only_id(service_template, IDENTITY_POOL)}
    domain = only_id(service_template, "AWS::Cognito::UserPoolDomain")
    assert console["CONSOLE_SIGN_IN_URL"]["Fn::Join"][1][:2] == ["https://", {"Ref": domain}]
