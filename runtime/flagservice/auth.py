"""Admin authentication: the IAM principal when deployed, a bearer token locally."""

from __future__ import annotations

import hmac

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from flagservice.errors import ForbiddenError, UnauthorizedError
from flagservice.settings import Settings

LOCAL_ACTOR = "local-admin"


def admin_actor(event: APIGatewayProxyEvent, settings: Settings) -> str:
    """Who is writing, or UnauthorizedError (missing) / ForbiddenError (wrong credentials).

    Deployed, API Gateway's IAM authorizer has checked the SigV4 signature; the handler takes the
    caller's principal from the request context and never accepts a bearer token.
    """
    if settings.deployed:
        principal = event.request_context.identity.user_arn
        if not principal:
            raise ForbiddenError("admin routes need an IAM-signed request")
        return principal
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
