"""Admin authentication: the IAM principal when deployed, a bearer token locally.

Deployed, who is writing comes only from what API Gateway's IAM authorizer puts in the request context,
never from a header. People signed in to the console call with credentials of a Cognito identity pool
role: their `userArn` is the role's session (`assumed-role/<role>/CognitoIdentityCredentials`, the same
for everyone in a group), so the actor is the user pool user instead, from
`cognitoAuthenticationProvider`, which API Gateway fills in as
`cognito-idp.<region>.amazonaws.com/<pool id>,cognito-idp.<region>.amazonaws.com/<pool id>:CognitoSignIn:<sub>`.
"""

from __future__ import annotations

import hmac
import re

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from flagservice.errors import ForbiddenError, UnauthorizedError
from flagservice.settings import Settings

LOCAL_ACTOR = "local-admin"
_SIGN_IN = re.compile(
    r"^cognito-idp\.[a-z0-9-]+\.amazonaws\.com/(?P<pool>[A-Za-z0-9_-]+):CognitoSignIn:(?P<sub>[0-9a-f-]{36})"
)


def admin_actor(event: APIGatewayProxyEvent, settings: Settings) -> str:
    """Who is writing, or UnauthorizedError (missing) / ForbiddenError (wrong credentials).

    Deployed, API Gateway's IAM authorizer has checked the SigV4 signature; the handler takes the
    caller's principal from the request context and never accepts a bearer token.
    """
    if settings.deployed:
        return _iam_actor(event, settings)
    header = event.headers.get("authorization")
    if not header:
        raise UnauthorizedError("admin routes need Authorization: Bearer <token>")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("admin routes need Authorization: Bearer <token>")
    expected = settings.ADMIN_TOKEN
    # surrogatepass: a header is any str in a Lambda event, and a lone surrogate must be a 403, not a 500.
    given = token.strip().encode("utf-8", "surrogatepass")
    if expected is None or not hmac.compare_digest(given, expected.encode()):
        raise ForbiddenError("the admin token is wrong")
    return LOCAL_ACTOR


def _iam_actor(event: APIGatewayProxyEvent, settings: Settings) -> str:
    """The IAM principal (flagctl, roles); for credentials of a Cognito identity, the signed-in person."""
    identity = event.request_context.identity
    principal = identity.user_arn
    if not principal:
        raise ForbiddenError("admin routes need an IAM-signed request")
    identity_id = identity.cognito_identity_id
    if not identity_id:
        return principal
    if identity.cognito_authentication_type != "authenticated":
        raise ForbiddenError("admin routes need a signed-in person, not a guest identity")
    ours = identity.cognito_identity_pool_id == settings.CONSOLE_IDENTITY_POOL_ID
    person = console_person(identity.cognito_authentication_provider or "", settings.CONSOLE_USER_POOL_ID)
    # An identity of another pool or provider (not ours: IAM let it in anyway) is still told apart from others.
    return person if ours and person else f"{principal} ({identity_id})"


def console_person(provider: str, user_pool_id: str | None) -> str | None:
    """`cognito:<pool id>/<sub>` when the provider string names a user of our user pool, else None.

    The string lists the provider, then the provider with the user; both must name our pool.
    """
    if not user_pool_id:
        return None
    issuer, _, signed_in = provider.partition(",")
    match = _SIGN_IN.fullmatch(signed_in)
    if match is None or match["pool"] != user_pool_id or not issuer.endswith("/" + user_pool_id):
        return None
    return f"cognito:{user_pool_id}/{match['sub']}"
