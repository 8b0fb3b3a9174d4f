"""SigV4 signing of one HTTP request for API Gateway (`execute-api`), with botocore's signer."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

SERVICE = "execute-api"
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def region_of(url: str) -> str | None:
    """The region in an `https://<id>.execute-api.<region>.amazonaws.com/...` URL, else None."""
    match = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def signed_headers(
    method: str,
    url: str,
    *,
    body: bytes | None,
    headers: Mapping[str, str],
    credentials: ReadOnlyCredentials,
    region: str,
    service: str = SERVICE,
) -> dict[str, str]:
    """`headers` plus X-Amz-Date, X-Amz-Security-Token (temporary credentials) and Authorization.

    The request must then be sent with exactly this method, URL, body and these headers: the signature
    covers the host, the path, the query string, every header given here and a hash of the body.
    """
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())
