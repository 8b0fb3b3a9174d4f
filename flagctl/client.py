"""A small HTTP client for the flag API (CONTRACT.md section 2), standard library plus botocore's signer."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from botocore.credentials import ReadOnlyCredentials

from flagctl.sigv4 import signed_headers

USER_AGENT = "flagctl/1"


class FlagctlError(Exception):
    """The request could not be made (network, configuration); the message is for the operator."""


class ApiError(FlagctlError):
    """The API answered with an error in the contract's shape."""

    def __init__(self, status: int, code: str, details: str) -> None:
        super().__init__(f"{status} {code}: {details}")
        self.status = status
        self.code = code
        self.details = details


@dataclass(frozen=True)
class BearerAuth:
    """The local server: `Authorization: Bearer $ADMIN_TOKEN` on admin routes."""

    token: str


@dataclass(frozen=True)
class AwsAuth:
    """A deployed environment: admin requests signed with SigV4 for API Gateway's IAM authorization."""

    credentials: ReadOnlyCredentials
    region: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


Opener = Callable[..., Any]


@dataclass
class FlagClient:
    """One API (base URL, stage included); admin calls use `auth`, reads send `api_key` when given."""

    base_url: str
    auth: BearerAuth | AwsAuth | None = None
    api_key: str | None = None
    timeout: float = 10.0
    opener: Opener = field(default=urllib.request.urlopen, repr=False)

    def list_flags(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every flag, in key order, following `next` page by page."""
        after: str | None = None
        while True:
            query = {"limit": str(page_size), **({"after": after} if after else {})}
            page = self.request("GET", "/flags", query=query).body
            yield from page["flags"]
            after = page.get("next")
            if not after:
                return

    def get_flag(self, key: str) -> Answer:
        return self.request("GET", f"/flags/{quote(key, safe='')}")

    def put_flag(self, definition: dict[str, Any], *, if_match: str | None = None) -> Answer:
        return self.request("POST", "/admin/flags", body=definition, admin=True, if_match=if_match)

    def kill(self, key: str, *, if_match: str | None = None) -> Answer:
        """The kill switch: PATCH `{"enabled": false}`."""
        path = f"/admin/flags/{quote(key, safe='')}"
        return self.request("PATCH", path, body={"enabled": False}, admin=True, if_match=if_match)

    def revert(self, key: str, version: int, *, if_match: str | None = None) -> Answer:
        path = f"/admin/flags/{quote(key, safe='')}/revert"
        return self.request("POST", path, body={"version": version}, admin=True, if_match=if_match)

    def warm_cache(self) -> Answer:
        """Fill the cache reads move to next (the inactive one of a cache move) with every flag."""
        return self.request("POST", "/admin/cache/warm", admin=True)

    def history(self, key: str, *, limit: int = 20) -> list[dict[str, Any]]:
        path = f"/admin/flags/{quote(key, safe='')}/history"
        entries: list[dict[str, Any]] = self.request("GET", path, query={"limit": str(limit)}, admin=True).body[
            "history"
        ]
        return entries

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        admin: bool = False,
        if_match: str | None = None,
    ) -> Answer:
        url = self.base_url.rstrip("/") + path + (f"?{urlencode(sorted(query.items()))}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if if_match is not None:
            headers["If-Match"] = if_match
        headers = self._authorize(method, url, data, headers, admin=admin)
        return self._send(urllib.request.Request(url, data=data, headers=headers, method=method))

    def _authorize(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str], *, admin: bool
    ) -> dict[str, str]:
        if not admin:
            return {**headers, "X-API-Key": self.api_key} if self.api_key else headers
        if isinstance(self.auth, BearerAuth):
            return {**headers, "Authorization": f"Bearer {self.auth.token}"}
        if isinstance(self.auth, AwsAuth):
            return signed_headers(
                method, url, body=data, headers=headers, credentials=self.auth.credentials, region=self.auth.region
            )
        raise FlagctlError("admin routes need credentials: FLAGCTL_TOKEN for the local server, or --aws")

    def _send(self, request: urllib.request.Request) -> Answer:
        try:
            with self.opener(request, timeout=self.timeout) as response:
                return Answer(response.status, _headers(response), _json(response.read()))
        except urllib.error.HTTPError as error:
            body = _json(error.read())
            if isinstance(body, dict) and "errorCode" in body:
                raise ApiError(error.code, body["errorCode"], str(body.get("errorDetails", ""))) from None
            raise ApiError(error.code, "HTTP_ERROR", str(body)[:200]) from None
        except (urllib.error.URLError, OSError) as error:
            raise FlagctlError(f"cannot reach {request.full_url}: {error}") from None


def _headers(response: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
