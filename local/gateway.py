"""A WSGI application that plays API Gateway: HTTP request -> REST proxy event -> Lambda handler -> HTTP.

The local server has no routes of its own: every request becomes the event API Gateway (REST API,
payload 1.0, catch-all `/{proxy+}` resource) would send, as `sam local start-api` does, and the
handler's proxy result becomes the HTTP answer. Bodies that are valid UTF-8 travel as text,
anything else base64-encoded with `isBase64Encoded`, so the handler can answer PARSE_ERROR itself.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

from flagservice.lambda_context import LocalContext
from local.prefork.connection import CLOSE_CONNECTION

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20  # the handler itself answers 413 above 32 KiB; this only bounds the server's memory
DRAIN_LIMIT_BYTES = 16 << 20  # read and discard this much of a refused body so the client sees our 413
MAX_LINE_BYTES = 1024  # a chunk-size or trailer line
MAX_TRAILER_LINES = 64
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")  # int(x, 16) alone would take "-5", "0x5", "+5" and "1_0"
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
     "transfer-encoding", "upgrade"}
)  # fmt: skip
LambdaHandler = Callable[[dict[str, Any], Any], Any]
StartResponse = Callable[..., Any]


class RequestBodyError(Exception):
    """The request body cannot be passed on; carries the HTTP status and the contract's error code."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, or RequestBodyError: 413 over MAX_BODY_BYTES; 400 PARSE_ERROR for malformed
    framing, or a body that ends (or stalls past the request's read deadline) before its declared length."""
    stream = environ["wsgi.input"]
    try:
        if environ.get("HTTP_TRANSFER_ENCODING") is not None:
            _require_chunked(str(environ["HTTP_TRANSFER_ENCODING"]))
            return _read_chunked(stream)
        return _read_sized(stream, _content_length(environ))
    except TimeoutError:
        raise _malformed("the body did not arrive in time") from None


def _malformed(detail: str) -> RequestBodyError:
    return RequestBodyError(400, "PARSE_ERROR", detail)


def _require_chunked(transfer_encoding: str) -> None:
    # Only chunked tells where the body ends; anything else last would leave its length unknown.
    if transfer_encoding.rsplit(",", 1)[-1].strip().lower() != "chunked":
        raise _malformed("a Transfer-Encoding must end with chunked")


def _content_length(environ: dict[str, Any]) -> int:
    """Content-Length as digits only (no sign, no `_`, no hex); repeated with different values is refused."""
    raw = environ.get("flagservice.raw_headers") or []
    values = {str(value).strip() for name, value in raw if str(name).lower() == "content-length"}
    values = values or {str(environ.get("CONTENT_LENGTH") or "0").strip()}
    if len(values) > 1:
        raise _malformed("Content-Length is repeated with different values")
    value = values.pop()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise _malformed("Content-Length is not a whole number")
    return int(value)


def _read_sized(stream: Any, length: int) -> bytes:
    if length > MAX_BODY_BYTES:
        _drain(stream, length)
        raise RequestBodyError(413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes")
    data = bytes(stream.read(length)) if length else b""
    if len(data) < length:
        raise _malformed("the body is shorter than its Content-Length")
    return data


def _drain(stream: Any, length: int) -> None:
    """Discard a refused body (up to a limit) so closing the socket does not reset the client before it reads."""
    left = min(length, DRAIN_LIMIT_BYTES)
    with contextlib.suppress(TimeoutError):
        while left > 0:
            chunk = stream.read(min(left, 65536))
            if not chunk:
                return
            left -= len(chunk)


def _read_chunked(stream: Any) -> bytes:
    """A chunked body, strictly: hex sizes only, each chunk exactly its size and followed by CRLF."""
    body = bytearray()
    while True:
        size = _chunk_size(_line(stream))
        if size == 0:
            _skip_trailers(stream)
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise RequestBodyError(413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes")
        chunk = bytes(stream.read(size))
        if len(chunk) < size or _line(stream) not in (b"\r\n", b"\n"):
            raise _malformed("a chunk does not match its size")
        body += chunk


def _line(stream: Any) -> bytes:
    line = bytes(stream.readline(MAX_LINE_BYTES))
    if not line.endswith(b"\n"):
        raise _malformed("malformed chunked body: a line is cut short or too long")
    return line


def _chunk_size(line: bytes) -> int:
    digits = line.split(b";", 1)[0].strip()  # a chunk extension after `;` is allowed and ignored
    if not _CHUNK_SIZE.fullmatch(digits):
        raise _malformed("malformed chunked body: a chunk size is not hexadecimal")
    return int(digits, 16)


def _skip_trailers(stream: Any) -> None:
    for _ in range(MAX_TRAILER_LINES):
        if not _line(stream).strip():
            return
    raise _malformed(f"malformed chunked body: more than {MAX_TRAILER_LINES} trailer lines")


def request_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """Headers as the client sent them (case and repeats kept) when the server provides them."""
    raw = environ.get("flagservice.raw_headers")
    if raw is not None:
        return [(str(name), str(value).strip()) for name, value in raw]
    headers = [(k[5:].replace("_", "-").title(), str(v)) for k, v in environ.items() if k.startswith("HTTP_")]
    for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
        if environ.get(key):
            headers.append((name, str(environ[key])))
    return headers


def _multi(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _path_and_query(environ: dict[str, Any]) -> tuple[str, str]:
    raw = environ.get("RAW_URI")
    if raw:
        path, _, query = str(raw).partition("?")
        return unquote(path, errors="replace") or "/", query
    path = str(environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")
    return path, str(environ.get("QUERY_STRING") or "")


def build_event(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The REST proxy event (payload 1.0) API Gateway would send for this request."""
    path, query = _path_and_query(environ)
    headers = _multi(request_headers(environ))
    source_ip = str(environ.get("REMOTE_ADDR") or "127.0.0.1")
    defaults = {"X-Forwarded-For": source_ip, "X-Forwarded-Proto": "http", "X-Forwarded-Port": environ["SERVER_PORT"]}
    for name, value in defaults.items():
        if name.lower() not in {h.lower() for h in headers}:
            headers[name] = [str(value)]
    queries = _multi(parse_qsl(query, keep_blank_values=True))
    text, encoded = _encode_body(body)
    method = str(environ["REQUEST_METHOD"]).upper()
    return {
        "resource": "/{proxy+}" if path != "/" else "/",
        "path": path,
        "httpMethod": method,
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in queries.items()} or None,
        "multiValueQueryStringParameters": queries or None,
        "pathParameters": {"proxy": path[1:]} if path != "/" else None,
        "stageVariables": None,
        "requestContext": _request_context(method, path, headers, source_ip),
        "body": text,
        "isBase64Encoded": encoded,
    }


def _encode_body(body: bytes) -> tuple[str | None, bool]:
    if not body:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _request_context(method: str, path: str, headers: dict[str, list[str]], source_ip: str) -> dict[str, Any]:
    lower = {name.lower(): values[-1] for name, values in headers.items()}
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    identity_keys = ("accessKey", "accountId", "caller", "cognitoAuthenticationProvider", "cognitoAuthenticationType",
                     "cognitoIdentityId", "cognitoIdentityPoolId", "principalOrgId", "user", "userArn")  # fmt: skip
    return {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": lower.get("host", "127.0.0.1"),
        "domainPrefix": lower.get("host", "127.0.0.1").split(".")[0],
        "extendedRequestId": request_id,
        "httpMethod": method,
        "identity": {**dict.fromkeys(identity_keys), "sourceIp": source_ip, "userAgent": lower.get("user-agent")},
        "path": f"/local{path}",
        "protocol": "HTTP/1.1",
        "requestId": request_id,
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "resourceId": "local",
        "resourcePath": "/{proxy+}" if path != "/" else "/",
        "stage": "local",
    }


def build_response(result: Any, method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body from a proxy result, merged as API Gateway merges them.

    `multiValueHeaders` wins for a name present in both; `headers` fills in the rest. Raises
    ValueError for a result API Gateway would call malformed (it answers 502 then).
    """
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise ValueError("the handler's result has no integer statusCode")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError("the handler's body is not a string")
    try:
        payload = (
            base64.b64decode(body or "", validate=True) if result.get("isBase64Encoded") else (body or "").encode()
        )
    except binascii.Error:
        raise ValueError("the handler's isBase64Encoded body is not base64") from None
    headers = _response_headers(result.get("headers") or {}, result.get("multiValueHeaders") or {})
    names = {name.lower() for name, _ in headers}
    if "content-type" not in names:
        headers.append(("Content-Type", "application/json"))
    status = int(result["statusCode"])
    if status in (204, 304):
        payload = b""
    headers.append(("Content-Length", str(len(payload))))
    return f"{status} {_reason(status)}", headers, b"" if method == "HEAD" else payload


def _response_headers(single: dict[str, Any], multi: dict[str, Any]) -> list[tuple[str, str]]:
    merged = [(str(name), str(value)) for name, values in multi.items() for value in (values or [])]
    taken = {str(name).lower() for name in multi}
    merged += [(str(name), str(value)) for name, value in single.items() if str(name).lower() not in taken]
    return [(n, v) for n, v in merged if n.lower() not in HOP_BY_HOP and n.lower() != "content-length"]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def error_answer(start_response: StartResponse, status: int, code: str, detail: str) -> list[bytes]:
    """An answer in the contract's error shape, for what never reaches the handler."""
    body = json.dumps({"errorCode": code, "errorDetails": detail}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(f"{status} {_reason(status)}", headers)
    return [body]


class LambdaGateway:
    """The WSGI application: one Lambda handler behind API Gateway semantics."""

    def __init__(self, handler: LambdaHandler) -> None:
        self.handler = handler

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        try:
            event = build_event(environ, read_body(environ))
        except RequestBodyError as refused:
            environ[CLOSE_CONNECTION] = True  # the rest of the body may still be on the wire: never reuse it
            return error_answer(start_response, refused.status, refused.code, refused.detail)
        try:
            status, headers, payload = build_response(self.handler(event, LocalContext()), event["httpMethod"])
        except Exception:
            log.exception("the Lambda handler failed or returned a malformed result", extra={"path": event["path"]})
            return error_answer(start_response, 502, "GENERAL", "the function failed")
        headers.append(("x-amzn-RequestId", event["requestContext"]["requestId"]))
        start_response(status, headers)
        return [payload]
