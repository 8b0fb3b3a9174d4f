"""HTTP/1.1 keep-alive on the local server, still one request at a time per worker and never parked on a client."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import pytest

from tests.integration.test_local_server import Gateway, start_gateway

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def single() -> Iterator[Gateway]:
    """One worker: any parking on an idle connection would show as a stalled second client."""
    server = start_gateway(workers=1)
    yield server
    server.stop()


def test_one_connection_carries_several_requests(single: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", single.port, timeout=10)
    try:
        conn.connect()
        client_socket = conn.sock
        for _ in range(3):
            conn.request("GET", "/echo")
            answer = conn.getresponse()
            answer.read()
            assert (answer.status, answer.version, answer.getheader("Connection")) == (200, 11, "keep-alive")
            assert conn.sock is client_socket  # never reconnected
    finally:
        conn.close()


def test_an_idle_kept_connection_does_not_hold_the_worker(single: Gateway) -> None:
    idle = http.client.HTTPConnection("127.0.0.1", single.port, timeout=10)
    other = http.client.HTTPConnection("127.0.0.1", single.port, timeout=3)
    try:
        idle.request("GET", "/echo")
        idle.getresponse().read()  # now kept open and idle

        other.request("GET", "/echo")
        assert other.getresponse().status == 200  # within 3 s, though the only worker keeps `idle`

        idle.request("GET", "/echo")
        assert idle.getresponse().status == 200
    finally:
        idle.close()
        other.close()


def test_connection_close_is_honoured(single: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", single.port), timeout=10) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert b"\r\nConnection: close\r\n" in received


def test_pipelined_requests_are_all_answered_in_order(single: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", single.port), timeout=10) as sock:
        first = b"GET /echo?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(first + b"GET /echo?n=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 2
    assert 0 <= received.find(b'"n": "1"') < received.find(b'"n": "2"')


def test_a_refused_body_closes_the_connection(single: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", single.port, timeout=10)
    try:
        conn.request("POST", "/echo", body=b"x" * ((1 << 20) + 1))
        answer = conn.getresponse()
        assert answer.status == 413
        assert answer.getheader("Connection") == "close"
    finally:
        conn.close()
