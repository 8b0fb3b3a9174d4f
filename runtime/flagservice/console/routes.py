"""`GET /console` and its assets: static files of this package, served by the handler itself.

They need no API key and no admin token: the page holds no data of its own, asks for the token and calls
the admin API with it. Deployed (the CONSOLE_* settings), the page carries the Cognito sign-in settings
as data and the browser signs its admin calls with SigV4 (signin.js, sigv4.js).
Files are read once per container, on the first console request (never at import: the read path's cold
start pays nothing for them). Every answer carries a strong ETag, so a browser revalidates with
`If-None-Match` and gets 304. The page's Content-Security-Policy allows scripts, styles and calls from
this origin only, plus the event stream's origin (`make dev` serves it on another port; deployed, the push
channel's wss:// endpoint, which the console follows with the adapter flag-channel.js) and, deployed,
Cognito's token and identity endpoints.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from flagservice.http import error_body, json_response
from flagservice.settings import Settings, get_settings

router = APIGatewayRouter()
STATIC_DIR = Path(__file__).resolve().parent / "static"
PAGE = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
COMMON_HEADERS = {
    "Cache-Control": "no-cache",  # always revalidated (ETag): a new deployment is seen at once
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str
    etag: str


@functools.cache
def assets() -> dict[str, Asset]:
    """Every servable file of static/, by name; nothing else on disk can be named by a request."""
    found = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in CONTENT_TYPES:
            body = path.read_text(encoding="utf-8")
            etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
            found[path.name] = Asset(body, CONTENT_TYPES[path.suffix], etag)
    return found


def sign_in_config(settings: Settings) -> dict[str, str] | None:
    """Deployed sign-in, as the page reads it: None (the default) keeps the local admin-token sign-in."""
    if not (settings.CONSOLE_USER_POOL_ID and settings.CONSOLE_CLIENT_ID and settings.CONSOLE_IDENTITY_POOL_ID):
        return None
    region = settings.CONSOLE_IDENTITY_POOL_ID.split(":")[0]
    return {
        "mode": "cognito",
        "region": region,
        "userPoolId": settings.CONSOLE_USER_POOL_ID,
        "clientId": settings.CONSOLE_CLIENT_ID,
        "identityPoolId": settings.CONSOLE_IDENTITY_POOL_ID,
        "signInUrl": str(settings.CONSOLE_SIGN_IN_URL),
        "identityUrl": f"https://cognito-identity.{region}.amazonaws.com/",
    }


@functools.lru_cache(maxsize=4)
def page_asset(config_json: str | None) -> Asset:
    """index.html, with the sign-in settings as data on <body> when deployed (data, never script: CSP)."""
    page = assets()[PAGE]
    if config_json is None:
        return page
    body = page.body.replace("<body>", f'<body data-sign-in="{html.escape(config_json, quote=True)}">', 1)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
    return Asset(body, page.content_type, etag)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy() -> str:
    """Own origin only, plus the advertised event stream's origin (deployed, the push channel's wss:// one) and,
    deployed, Cognito's token and identity endpoints."""
    connect = "'self'"
    settings = get_settings()
    stream = settings.PUSH_CHANNEL_URL or settings.EVENT_STREAM_URL  # the one advertised (push/advertise.py)
    if stream:
        connect += " " + _origin(stream)
    config = sign_in_config(settings)
    if config:
        connect += f" {_origin(config['signInUrl'])} {_origin(config['identityUrl'])}"
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect};"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _serve(name: str) -> Response[str]:
    asset = assets()[name]
    headers = {**COMMON_HEADERS, "ETag": asset.etag}
    if name == PAGE:
        config = sign_in_config(get_settings())
        asset = page_asset(json.dumps(config, sort_keys=True) if config else None)
        headers.update({"ETag": asset.etag, "Content-Security-Policy": content_security_policy()})
    if router.current_event.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, body="", headers=headers)
    return Response(status_code=200, content_type=asset.content_type, body=asset.body, headers=headers)


@router.get("/console")
def console_page() -> Response[str]:
    """The page; `/console/` (the REST resolver ignores trailing slashes) is redirected here, where the
    page's relative asset URLs resolve, behind a stage prefix too."""
    if router.current_event.path.endswith("/"):
        return Response(status_code=308, body="", headers={"Location": "../console", "Cache-Control": "no-store"})
    return _serve(PAGE)


@router.get("/console/<name>")
def console_asset(name: str) -> Response[str]:
    if name == PAGE or name not in assets():
        return json_response(404, error_body("NOT_FOUND", "no such route"))
    return _serve(name)
