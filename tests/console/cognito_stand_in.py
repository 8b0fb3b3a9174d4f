"""A local stand-in for what the deployed console talks to: the Cognito hosted UI, the identity pool, API Gateway.

Test-only, one small threaded HTTP server, answering in the shapes AWS documents:
- hosted UI: `GET /oauth2/authorize` (it signs in `next_user` at once, no form, and redirects back with
  `code` and `state`), `POST /oauth2/token` (authorization_code with a PKCE S256 check, refresh_token),
  `POST /oauth2/revoke`, `GET /logout` (back to `logout_uri`);
- identity pool: `POST /identity/` with `X-Amz-Target: AWSCognitoIdentityService.GetId` or
  `.GetCredentialsForIdentity` (JSON 1.1; errors as `{"__type", "message"}`);
- API Gateway's IAM authorizer in front of a few admin routes: the SigV4 signature is recomputed with
  botocore for the credentials it issued (401 without one, 403 when wrong), then the group role's policy
  (editors: any method; viewers: GET only) decides, 403 in the contract's error shape like the deployed
  gateway response.
- the console's page and assets from the package, the page carrying the sign-in settings as data.

The page is served on `http://127.0.0.1:<port>` and Cognito on `http://localhost:<port>`: two origins, so
the browser applies CORS to the Cognito calls as it does deployed.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from flagservice.console import routes

REGION = "eu-west-1"
USER_POOL = f"{REGION}_StandIn01"
IDENTITY_POOL = f"{REGION}:00000000-1111-2222-3333-444444444444"
CLIENT_ID = "standinclient0123456789abcd"
STAGE = "v1"
SIGNATURE_WINDOW_SECONDS = 300  # AWS refuses a signature more than five minutes from its own clock
GROUP_METHODS = {"flag-editors": None, "flag-viewers": {"GET"}}  # None: every method


@dataclass
class User:
    email: str
    groups: list[str]
    sub: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Issued:
    group: str | None
    credentials: Credentials
    expires: float


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class StandIn:
    """State shared with the tests: who signs in next, token lifetimes, what arrived."""

    next_user: User = field(default_factory=lambda: User("editor@example.com", ["flag-editors"]))
    token_seconds: int = 3600
    credential_seconds: int = 3600
    codes: dict[str, tuple[User, str, str]] = field(default_factory=dict)  # code -> user, challenge, redirect
    refresh_tokens: dict[str, User] = field(default_factory=dict)
    id_tokens: dict[str, User] = field(default_factory=dict)
    issued: dict[str, Issued] = field(default_factory=dict)  # access key id -> what it may do
    admin_requests: list[dict[str, Any]] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    identity_calls: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    flags: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{STAGE}/console"

    @property
    def cognito_origin(self) -> str:
        return f"http://localhost:{self.port}"

    def sign_in_config(self) -> dict[str, str]:
        return {
            "mode": "cognito",
            "region": REGION,
            "userPoolId": USER_POOL,
            "clientId": CLIENT_ID,
            "identityPoolId": IDENTITY_POOL,
            "signInUrl": self.cognito_origin,
            "identityUrl": f"{self.cognito_origin}/identity/",
        }

    def id_token(self, user: User) -> str:
        claims = {
            "sub": user.sub,
            "email": user.email,
            "cognito:groups": user.groups,
            "aud": CLIENT_ID,
            "token_use": "id",
            "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{USER_POOL}",
            "exp": int(time.time()) + self.token_seconds,
        }
        header = b64url(json.dumps({"alg": "RS256", "kid": "stand-in"}).encode())
        token = f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(secrets.token_bytes(32))}"
        self.id_tokens[token] = user
        return token

    def tokens(self, user: User, *, with_refresh: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id_token": self.id_token(user),
            "access_token": b64url(secrets.token_bytes(24)),
            "expires_in": self.token_seconds,
            "token_type": "Bearer",
        }
        if with_refresh:
            answer["refresh_token"] = b64url(secrets.token_bytes(32))
            self.refresh_tokens[answer["refresh_token"]] = user
        return answer

    def seed(self) -> None:
        for key, enabled in (("checkout-v2", True), ("payments-kill-switch", True)):
            self.flags[key] = {
                "key": key, "description": f"{key} (stand-in)", "enabled": enabled,
                "variants": {"on": True, "off": False}, "defaultVariant": "on", "offVariant": "off",
                "rules": [], "rollout": None, "version": 1, "updatedAt": "2026-01-01T00:00:00Z",
            }  # fmt: skip


def _verify_signature(handler: BaseHTTPRequestHandler, body: bytes, stand_in: StandIn) -> Issued | str:
    """The IAM authorizer: the credentials it issued, or why not (`missing` or `invalid`)."""
    authorization = handler.headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return "missing"
    fields = dict(part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(","))
    access_key = fields["Credential"].split("/")[0]
    try:
        moment = datetime.datetime.strptime(handler.headers.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
    except ValueError:
        return "invalid"
    if abs(moment.replace(tzinfo=datetime.UTC).timestamp() - time.time()) > SIGNATURE_WINDOW_SECONDS:
        return "expired"
    issued = stand_in.issued.get(access_key)
    if issued is None or issued.expires < time.time():
        return "invalid"
    signed_names = fields["SignedHeaders"].split(";")
    if "host" not in signed_names or "x-amz-date" not in signed_names:
        return "invalid"
    headers = {name: handler.headers.get(name, "") for name in signed_names if name != "host"}
    request = AWSRequest(
        method=handler.command, url=f"http://{handler.headers['Host']}{handler.path}", data=body, headers=headers
    )
    original = botocore.auth.get_current_datetime  # type: ignore[attr-defined]
    with _CLOCK:
        botocore.auth.get_current_datetime = lambda *args, **kwargs: moment  # type: ignore[attr-defined]
        try:
            botocore.auth.SigV4Auth(issued.credentials, "execute-api", REGION).add_auth(request)
        finally:
            botocore.auth.get_current_datetime = original  # type: ignore[attr-defined]
    return issued if request.headers["Authorization"] == authorization else "invalid"


_CLOCK = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    stand_in: StandIn

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    # ---- plumbing ----
    def _send(self, status: int, body: Any = b"", headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Length": str(len(data)), "Cache-Control": "no-store", **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _cors(self) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": self.headers.get("Origin", "*"), "Content-Type": "application/json"}

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    # ---- routes ----
    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        self._send(204, headers={
            **self._cors(), "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "content-type, x-amz-target, x-amz-user-agent",
        })  # fmt: skip

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path.startswith(f"/{STAGE}/console"):
            return self._console(path)
        if path == "/oauth2/authorize":
            return self._authorize()
        if path == "/logout":
            query = parse_qs(urlsplit(self.path).query)
            return self._send(302, headers={"Location": query["logout_uri"][0]})
        return self._admin(b"")

    def do_PATCH(self) -> None:  # noqa: N802
        self._admin(self._body())

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/oauth2/token":
            return self._token(parse_qs(body.decode()))
        if path == "/oauth2/revoke":
            self.stand_in.revoked.append(parse_qs(body.decode())["token"][0])
            return self._send(200, b"", self._cors())
        if path == "/identity/":
            return self._identity(json.loads(body))
        return self._admin(body)

    def _console(self, path: str) -> None:
        name = path.removeprefix(f"/{STAGE}/console").lstrip("/")
        if name:
            asset = routes.assets()[name]
        else:
            asset = routes.page_asset(json.dumps(self.stand_in.sign_in_config(), sort_keys=True))
        policy = (
            f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self' {self.stand_in.cognito_origin}; base-uri 'none'; frame-ancestors 'none'"
        )
        self._send(200, asset.body.encode(), {"Content-Type": asset.content_type, "Content-Security-Policy": policy})

    def _authorize(self) -> None:
        query = {name: values[0] for name, values in parse_qs(urlsplit(self.path).query).items()}
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code", query
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43, query
        code = b64url(secrets.token_bytes(16))
        self.stand_in.codes[code] = (self.stand_in.next_user, query["code_challenge"], query["redirect_uri"])
        location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
        self._send(302, headers={"Location": location})

    def _token(self, form: dict[str, list[str]]) -> None:
        fields = {name: values[0] for name, values in form.items()}
        stand_in = self.stand_in
        stand_in.grants.append(fields.get("grant_type", ""))
        if fields.get("client_id") != CLIENT_ID:
            return self._send(400, {"error": "invalid_client"}, self._cors())
        if fields.get("grant_type") == "refresh_token":
            user = stand_in.refresh_tokens.get(fields.get("refresh_token", ""))
            if user is None or fields["refresh_token"] in stand_in.revoked:
                return self._send(400, {"error": "invalid_grant"}, self._cors())
            return self._send(200, stand_in.tokens(user, with_refresh=False), self._cors())
        found = stand_in.codes.pop(fields.get("code", ""), None)
        if found is None:
            return self._send(400, {"error": "invalid_grant"}, self._cors())
        user, challenge, redirect = found
        verifier = fields.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != challenge or fields.get("redirect_uri") != redirect:
            return self._send(400, {"error": "invalid_grant"}, self._cors())
        self._send(200, stand_in.tokens(user, with_refresh=True), self._cors())

    def _identity(self, request: dict[str, Any]) -> None:
        target = self.headers.get("X-Amz-Target", "").removeprefix("AWSCognitoIdentityService.")
        self.stand_in.identity_calls.append(target)
        token = request.get("Logins", {}).get(f"cognito-idp.{REGION}.amazonaws.com/{USER_POOL}", "")
        user = self.stand_in.id_tokens.get(token)
        if user is None:
            return self._send(
                400, {"__type": "NotAuthorizedException", "message": "Invalid login token."}, self._cors()
            )
        if target == "GetId":
            return self._send(200, {"IdentityId": f"{REGION}:{uuid.uuid5(uuid.NAMESPACE_URL, user.sub)}"}, self._cors())
        group = next((g for g in ("flag-editors", "flag-viewers") if g in user.groups), None)
        if group is None:  # ambiguous role resolution: Deny
            message = "Ambiguous role mapping rules for: cognito-idp provider"
            return self._send(400, {"__type": "NotAuthorizedException", "message": message}, self._cors())
        credentials = Credentials(
            "ASIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30), secrets.token_urlsafe(60) + "+/="
        )
        expires = time.time() + self.stand_in.credential_seconds
        self.stand_in.issued[credentials.access_key] = Issued(group, credentials, expires)
        answer = {
            "IdentityId": request["IdentityId"],
            "Credentials": {
                "AccessKeyId": credentials.access_key, "SecretKey": credentials.secret_key,
                "SessionToken": credentials.token, "Expiration": expires,
            },
        }  # fmt: skip
        self._send(200, answer, self._cors())

    def _admin(self, body: bytes) -> None:
        verdict = _verify_signature(self, body, self.stand_in)
        record = {"method": self.command, "path": self.path, "headers": dict(self.headers), "verdict": verdict}
        self.stand_in.admin_requests.append(record)
        if verdict == "missing":
            return self._send(401, {"errorCode": "UNAUTHORIZED", "errorDetails": "Missing Authentication Token"})
        if verdict == "expired":
            message = "Signature expired: the request's X-Amz-Date is more than 5 min. from the service's time"
            return self._send(403, {"errorCode": "FORBIDDEN", "errorDetails": message})
        if verdict == "invalid":
            return self._send(
                403, {"errorCode": "FORBIDDEN", "errorDetails": "The request signature we calculated does not match"}
            )
        assert isinstance(verdict, Issued)
        allowed = GROUP_METHODS[verdict.group or ""]
        if allowed is not None and self.command not in allowed:
            record["verdict"] = "denied"
            details = (
                f"User: arn:aws:sts::123456789012:assumed-role/{verdict.group}/CognitoIdentityCredentials is not "
                f"authorized to perform: execute-api:Invoke on resource: {self.command} {self.path}"
            )
            return self._send(403, {"errorCode": "FORBIDDEN", "errorDetails": details})
        record["verdict"] = verdict.group
        self._serve_admin(urlsplit(self.path).path.removeprefix(f"/{STAGE}"), body)

    def _serve_admin(self, path: str, body: bytes) -> None:
        flags = self.stand_in.flags
        read = {"Content-Type": "application/json", "X-Cache": "HIT"}
        if self.command == "GET" and path == "/admin/flags":
            return self._send(200, {"flags": list(flags.values()), "next": None}, read)
        if self.command == "GET" and path == "/admin/cache/stats":
            return self._send(
                200, {"hits": 0, "misses": 0, "hitRate": 0.0, "since": "2026-01-01T00:00:00Z", "flags": []}
            )
        key = path.removeprefix("/admin/flags/").split("/")[0]
        if key not in flags:
            return self._send(404, {"errorCode": "FLAG_NOT_FOUND", "errorDetails": "no such flag", "key": key})
        if self.command == "PATCH":
            with self.stand_in.lock:
                flags[key] = {**flags[key], **json.loads(body), "version": flags[key]["version"] + 1}
            return self._send(200, flags[key], {"Content-Type": "application/json"})
        return self._send(200, {"history": [], "next": None}, {"Content-Type": "application/json"})


def serve(stand_in: StandIn) -> ThreadingHTTPServer:
    """Start the stand-in on a free port (stand_in.port); the caller shuts it down."""
    handler = type("StandInHandler", (_Handler,), {"stand_in": stand_in})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    stand_in.port = server.server_address[1]
    stand_in.seed()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
