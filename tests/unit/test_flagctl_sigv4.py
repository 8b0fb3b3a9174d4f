"""flagctl's SigV4 signing, checked against values it did not compute itself.

Three references: AWS's published SigV4 test-suite vectors (get-vanilla and
get-vanilla-query-order-key-case), a recorded kill-switch request whose Authorization header is
committed below, and a from-the-spec signer written here with hashlib and hmac only, which reproduces
both. botocore's clock is frozen; nothing touches the network.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

import botocore.auth
import pytest
from botocore.credentials import ReadOnlyCredentials

from flagctl.client import AwsAuth, BearerAuth, FlagClient
from flagctl.sigv4 import region_of, signed_headers

AWS_SUITE = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)
AWS_SUITE_TIME = datetime.datetime(2015, 8, 30, 12, 36, 0)
AWS_SUITE_SCOPE = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

# The recorded request: `flagctl kill checkout-v2 --if-match 7` against a deployed prod stage.
RECORDED_CREDENTIALS = ReadOnlyCredentials(
    "AKIAFLAGCTLTEST00001", "flagctl/test/secret/key/0123456789abcdefghij", "FlagctlTestSessionToken//abc+def=="
)
RECORDED_TIME = datetime.datetime(2026, 3, 14, 9, 26, 53)
RECORDED_URL = "https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com/v1"
RECORDED_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAFLAGCTLTEST00001/20260314/eu-central-1/execute-api/aws4_request, "
    "SignedHeaders=accept;content-type;host;if-match;x-amz-date;x-amz-security-token, "
    "Signature=5aa1825a6af4385136d1a7124cdbd8805c79bc7b28b1a80e9b705e5aedb63d14"
)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore reads the time through this one function when it signs."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: frozen_clock.now)  # type: ignore[attr-defined]


def at(moment: datetime.datetime) -> None:
    frozen_clock.now = moment  # type: ignore[attr-defined]


def reference_authorization(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: ReadOnlyCredentials,
    region: str,
    service: str,
    moment: datetime.datetime,
) -> str:
    """SigV4 from the specification: canonical request, string to sign, derived key, HMAC."""
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    parts = urlsplit(url)
    signed = {"host": parts.netloc, "x-amz-date": amz_date, **{k.lower(): v.strip() for k, v in headers.items()}}
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    signed.pop("user-agent", None)  # botocore never signs it (proxies rewrite it)
    names = sorted(signed)
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(p.split("=", 1) for p in parts.query.split("&") if p)
    )
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{credentials.secret_key}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    credential = f"Credential={credentials.access_key}/{scope}"
    return f"AWS4-HMAC-SHA256 {credential}, SignedHeaders={';'.join(names)}, Signature={signature}"


class CapturingOpener:
    """Stands in for urllib's opener: keeps the request, answers 200 with a stored flag."""

    def __init__(self) -> None:
        self.requests: list[urllib.request.Request] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> Any:
        self.requests.append(request)
        return _Response(b'{"key": "checkout-v2", "enabled": false, "version": 8}')


class _Response:
    status = 200

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.headers: dict[str, str] = {"Content-Type": "application/json"}

    def read(self) -> bytes:
        return self._body

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        ("https://example.amazonaws.com/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_signing_reproduces_the_aws_test_suite(url: str, signature: str) -> None:
    at(AWS_SUITE_TIME)
    expected = f"{AWS_SUITE_SCOPE}SignedHeaders=host;x-amz-date, Signature={signature}"

    headers = signed_headers(
        "GET", url, body=None, headers={}, credentials=AWS_SUITE, region="us-east-1", service="service"
    )

    assert headers["Authorization"] == expected
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert reference_authorization("GET", url, {}, b"", AWS_SUITE, "us-east-1", "service", AWS_SUITE_TIME) == expected


def test_a_recorded_kill_switch_request_is_signed_exactly_as_recorded() -> None:
    # Given the recorded time, credentials and endpoint
    at(RECORDED_TIME)
    opener = CapturingOpener()
    client = FlagClient(RECORDED_URL, auth=AwsAuth(RECORDED_CREDENTIALS, "eu-central-1"), opener=opener)

    # When flagctl flips the kill switch
    client.kill("checkout-v2", if_match="7")

    # Then its one request carries exactly the recorded signature
    (request,) = opener.requests
    sent = {k.lower(): v for k, v in request.header_items()}
    assert request.get_method() == "PATCH" and request.full_url == f"{RECORDED_URL}/admin/flags/checkout-v2"
    assert request.data == b'{"enabled": false}'
    assert sent["authorization"] == RECORDED_AUTHORIZATION
    assert sent["x-amz-date"] == "20260314T092653Z"
    assert sent["x-amz-security-token"] == RECORDED_CREDENTIALS.token


def test_the_recorded_header_follows_from_the_specification() -> None:
    headers = {
        "Accept": "application/json",
        "User-Agent": "flagctl/1",
        "Content-Type": "application/json",
        "If-Match": "7",
    }

    derived = reference_authorization(
        "PATCH",
        f"{RECORDED_URL}/admin/flags/checkout-v2",
        headers,
        b'{"enabled": false}',
        RECORDED_CREDENTIALS,
        "eu-central-1",
        "execute-api",
        RECORDED_TIME,
    )

    assert derived == RECORDED_AUTHORIZATION


def test_the_signature_covers_the_body() -> None:
    at(RECORDED_TIME)
    sign = lambda body: signed_headers(  # noqa: E731
        "POST",
        f"{RECORDED_URL}/admin/flags",
        body=body,
        headers={},
        credentials=RECORDED_CREDENTIALS,
        region="eu-central-1",
    )["Authorization"]

    assert sign(b'{"key": "a", "enabled": true}') != sign(b'{"key": "a", "enabled": false}')


def test_reads_carry_the_api_key_and_no_signature() -> None:
    at(RECORDED_TIME)
    opener = CapturingOpener()
    client = FlagClient(
        RECORDED_URL, auth=AwsAuth(RECORDED_CREDENTIALS, "eu-central-1"), api_key="k-123", opener=opener
    )

    client.get_flag("checkout-v2")

    sent = {k.lower(): v for k, v in opener.requests[0].header_items()}
    assert sent["x-api-key"] == "k-123" and "authorization" not in sent


def test_the_local_server_gets_the_bearer_token_on_admin_calls_only() -> None:
    opener = CapturingOpener()
    client = FlagClient("http://127.0.0.1:3000", auth=BearerAuth("t" * 32), opener=opener)

    client.kill("checkout-v2")
    client.get_flag("checkout-v2")

    admin, read = ({k.lower(): v for k, v in r.header_items()} for r in opener.requests)
    assert admin["authorization"] == "Bearer " + "t" * 32
    assert "authorization" not in read


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://a1b2c3d4e5.execute-api.eu-central-1.amazonaws.com/v1", "eu-central-1"),
        ("https://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/v1/", "cn-north-1"),
        ("http://127.0.0.1:3000", None),
        ("https://flags.example.com/v1", None),
    ],
)
def test_the_region_comes_from_an_execute_api_url(url: str, region: str | None) -> None:
    assert region_of(url) == region
