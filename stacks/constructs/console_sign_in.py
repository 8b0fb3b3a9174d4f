"""Who may use the deployed console: a Cognito user pool (hosted UI) and an identity pool whose group roles sign.

People sign in through the hosted UI (authorization code with PKCE; a public app client, no secret), then
trade their ID token at the identity pool for short-lived credentials of their group's IAM role and sign
the console's admin calls with SigV4. `/admin/*` keeps API Gateway's IAM authorizer and never accepts a
token; what a group may do is its role's policy (CONTRACT.md section 6):
- `flag-editors`: execute-api:Invoke on every method under /admin of this API's stage;
- `flag-viewers`: the same, GET only.
A person in no group gets nothing (ambiguous role resolution: deny); the identity pool has no guests.
Users exist only when an administrator creates them (no self sign-up, docs/operations.md).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.constructs.api import ADMIN_PATH, CONSOLE_PATH, STAGE_NAME
from stacks.nag import acknowledge

EDITORS = "flag-editors"
VIEWERS = "flag-viewers"
IDENTITY_SERVICE = "cognito-identity.amazonaws.com"


class ConsoleSignIn(Construct):
    """The user pool, its hosted-UI domain and console client, the two groups and their roles, the identity pool.

    `settings` are the function's CONSOLE_* variables: with them, `GET /console` serves the deployed sign-in.
    MFA: required in every environment (a staging flag can break a release too), TOTP only: no SMS, so no
    SNS role or text-message fees; the hosted UI enrols an authenticator app at the first sign-in. Threat
    protection (the Plus feature plan, "advanced security") is on, enforced: it is billed per monthly
    active user, a few dollars a year for a team of operators (docs/infrastructure.md).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        environment_name: str,
        api: apigateway.RestApi,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.api = api
        self.user_pool = self._user_pool(environment_name, removal_policy)
        self.domain = self.user_pool.add_domain(
            "SignInDomain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=f"flags-{environment_name}-{stack.account}"),
        )
        # Built from the RestApi's id, not its deployment stage: the function (whose settings name this
        # client) sits behind the stage, so a reference to the stage would be a cycle.
        self.console_url = (
            f"https://{api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}/{STAGE_NAME}/{CONSOLE_PATH}"
        )
        self.client = self._client()
        self.identity_pool = cognito.CfnIdentityPool(
            self,
            "IdentityPool",
            identity_pool_name=f"flagservice_{environment_name}_console",
            allow_unauthenticated_identities=False,
            allow_classic_flow=False,
            cognito_identity_providers=[
                cognito.CfnIdentityPool.CognitoIdentityProviderProperty(
                    client_id=self.client.user_pool_client_id,
                    provider_name=self.user_pool.user_pool_provider_name,
                    server_side_token_check=True,  # a signed-out (revoked) token gets no new credentials
                )
            ],
        )
        self.editors_role = self._group_role("Editors", EDITORS, precedence=1, methods="*")
        self.viewers_role = self._group_role("Viewers", VIEWERS, precedence=2, methods="GET")
        self._attach_roles()

    def _user_pool(self, environment_name: str, removal_policy: cdk.RemovalPolicy) -> cognito.UserPool:
        return cognito.UserPool(
            self,
            "Users",
            user_pool_name=f"flagservice-{environment_name}-console",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=cdk.Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=removal_policy == cdk.RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )

    def _client(self) -> cognito.UserPoolClient:
        return self.user_pool.add_client(
            "Console",
            generate_secret=False,  # a browser keeps no secret: PKCE protects the code instead
            # None named here, so Cognito still allows SRP and custom auth through its API beside the hosted UI
            # (tests/infrastructure/test_console_sign_in_attacks.py, xfail): MFA and threat protection apply to both.
            auth_flows=cognito.AuthFlow(),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[self.console_url],
                logout_urls=[self.console_url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=cdk.Duration.hours(1),
            access_token_validity=cdk.Duration.hours(1),
            refresh_token_validity=cdk.Duration.hours(12),  # a working day; then the hosted UI again
        )

    def _federated(self) -> iam.FederatedPrincipal:
        """Credentials of this identity pool, for signed-in people only."""
        return iam.FederatedPrincipal(
            IDENTITY_SERVICE,
            conditions={
                "StringEquals": {f"{IDENTITY_SERVICE}:aud": self.identity_pool.ref},
                "ForAnyValue:StringLike": {f"{IDENTITY_SERVICE}:amr": "authenticated"},
            },
            assume_role_action="sts:AssumeRoleWithWebIdentity",
        )

    def _group_role(self, name: str, group: str, *, precedence: int, methods: str) -> iam.Role:
        """The IAM role a group's members sign with: execute-api:Invoke on /admin/* of this stage, `methods` only."""
        resource = self.api.arn_for_execute_api(method=methods, path=f"/{ADMIN_PATH}/*", stage=STAGE_NAME)
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=self._federated(),
            description=f"Console {group}: {'every' if methods == '*' else methods} method on /admin/* of the flag API",
            max_session_duration=cdk.Duration.hours(1),
            inline_policies={
                "FlagAdminApi": iam.PolicyDocument(
                    statements=[iam.PolicyStatement(actions=["execute-api:Invoke"], resources=[resource])]
                )
            },
        )
        cognito.CfnUserPoolGroup(
            self,
            f"{name}Group",
            user_pool_id=self.user_pool.user_pool_id,
            group_name=group,
            description=f"Console {group}",
            precedence=precedence,  # in both groups: the editors' role (lower precedence wins)
            role_arn=role.role_arn,
        )
        stack = cdk.Stack.of(self)
        api_id = str(stack.resolve(stack.get_logical_id(self.api.node.default_child)))  # type: ignore[arg-type]
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"<{api_id}>/{STAGE_NAME}/{methods}/{ADMIN_PATH}/*]",
            f"The wildcards are the paths below /admin{' and the HTTP method' if methods == '*' else ''} of this "
            f"one API and stage: {group} may call {'every admin route' if methods == '*' else 'admin reads'} "
            "and no read route.",
        )
        return role

    def _attach_roles(self) -> None:
        """Roles come from the ID token's group (cognito:preferred_role); no group, no credentials."""
        no_access = iam.Role(
            self,
            "NoGroupRole",
            assumed_by=self._federated(),
            description="Console users in no group: the identity pool's default role, with no permissions",
            max_session_duration=cdk.Duration.hours(1),
        )
        provider = cdk.Fn.join(":", [self.user_pool.user_pool_provider_name, self.client.user_pool_client_id])
        cognito.CfnIdentityPoolRoleAttachment(
            self,
            "Roles",
            identity_pool_id=self.identity_pool.ref,
            roles={"authenticated": no_access.role_arn},
            role_mappings={
                "console": cognito.CfnIdentityPoolRoleAttachment.RoleMappingProperty(
                    type="Token", ambiguous_role_resolution="Deny", identity_provider=provider
                )
            },
        )

    @property
    def sign_in_url(self) -> str:
        return self.domain.base_url()

    def settings(self) -> dict[str, str]:
        """The function's CONSOLE_* settings (flagservice.settings)."""
        return {
            "CONSOLE_USER_POOL_ID": self.user_pool.user_pool_id,
            "CONSOLE_CLIENT_ID": self.client.user_pool_client_id,
            "CONSOLE_IDENTITY_POOL_ID": self.identity_pool.ref,
            "CONSOLE_SIGN_IN_URL": self.sign_in_url,
        }
