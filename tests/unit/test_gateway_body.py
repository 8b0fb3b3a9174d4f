"""The local gateway's request bodies: framing read strictly, or refused in the contract's shape.

The raw-socket cases (deadlines, a real worker) are in tests/integration/test_hostile_http.py.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from local.gateway import MAX_BODY_BYTES, MAX_TRAILER_LINES, RequestBodyError, read_body


def environ(body: bytes, **headers: str) -> dict[str, Any]:
    raw = [(name.replace("_", "-"), value) for name, value in headers.items()]
    env: dict[str, Any] = {"wsgi.input": io.BytesIO(body), "flagservice.raw_headers": raw}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_LENGTH" else f"HTTP_{key}"] = value
    return env


def chunked(body: bytes) -> dict[str, Any]:
    return environ(body, Transfer_Encoding="chunked")


@pytest.mark.parametrize(
    ("framed", "expected"),
    [
        (environ(b"abc", Content_Length="3"), b"abc"),
        (environ(b"abcdef", Content_Length="3"), b"abc"),  # the rest is the next request's
        (environ(b""), b""),
        (chunked(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), b"abcde"),
        (chunked(b"3;name=value\r\nabc\r\n0\r\n\r\n"), b"abc"),
        (chunked(b"A\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"), b"0123456789"),
        (chunked(b"3\nabc\n0\n\n"), b"abc"),
        (environ(b"3\r\nabc\r\n0\r\n\r\n", Transfer_Encoding="gzip, chunked"), b"abc"),
    ],
)
def test_well_framed_bodies_are_read_exactly(framed: dict[str, Any], expected: bytes) -> None:
    assert read_body(framed) == expected


@pytest.mark.parametrize(
    "framed",
    [
        environ(b"ab", Content_Length="3"),
        environ(b"abc", Content_Length="-3"),
        environ(b"abc", Content_Length="0x3"),
        environ(b"abc", Content_Length="3_0"),
        environ(b"abc", Content_Length="9" * 40),
        chunked(b"-3\r\nabc\r\n0\r\n\r\n"),
        chunked(b" \r\nabc\r\n0\r\n\r\n"),
        chunked(b"3\r\nabcd\r\n0\r\n\r\n"),
        chunked(b"3\r\nab"),
        chunked(b"3\r\nabc\r\n"),
        chunked(b"3\r\nabc\r\n0\r\n"),
        chunked(b"3" + b"0" * 2000 + b"\r\n"),
        chunked(b"0\r\n" + b"T: x\r\n" * (MAX_TRAILER_LINES + 1) + b"\r\n"),
        environ(b"abc", Transfer_Encoding="chunked, gzip"),
    ],
)
def test_malformed_framing_is_a_parse_error(framed: dict[str, Any]) -> None:
    with pytest.raises(RequestBodyError) as refused:
        read_body(framed)

    assert (refused.value.status, refused.value.code) == (400, "PARSE_ERROR")


def test_repeated_content_lengths_must_agree() -> None:
    framed = environ(b"abc", Content_Length="3")
    framed["flagservice.raw_headers"] += [("content-length", "3")]
    assert read_body(framed) == b"abc"

    framed["flagservice.raw_headers"] += [("Content-Length", "2")]
    with pytest.raises(RequestBodyError):
        read_body(framed)


def test_a_chunk_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(RequestBodyError) as refused:
        read_body(chunked(f"{MAX_BODY_BYTES + 1:x}\r\n".encode()))

    assert (refused.value.status, refused.value.code) == (413, "PAYLOAD_TOO_LARGE")
