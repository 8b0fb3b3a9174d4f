"""Hostile HTTP on the real local server, real handler, real Redis and PostgreSQL (CONTRACT.md section 2).

Raw sockets send what no HTTP library would: malformed chunked framing, bodies shorter than their
Content-Length, invalid UTF-8, trickled requests. Each is 400 PARSE_ERROR in the contract's shape,
nothing is written (PostgreSQL's own audit table is counted), and no worker is held past the read
deadline. The server runs one worker, so a held worker would show as a second client left waiting.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from flagservice.adapters.migrations import migrate
from tests.apigw import ADMIN_TOKEN
from tests.servers import create_database

REPO = Path(__file__).resolve().parents[2]
READ_DEADLINE_SECONDS = 2.0  # the server's whole-request read deadline, shortened for this module
WAIT_SECONDS = 5 * READ_DEADLINE_SECONDS  # a correctness deadline with a wide margin, not a latency goal
pytestmark = [pytest.mark.real, pytest.mark.timeout(180)]

START = (
    "import sys, local.prefork.connection as connection; connection.REQUEST_READ_SECONDS = float(sys.argv[1]);"
    "from local.serve import main; sys.exit(main(['--port', '0', '--workers', '1']))"
)


@dataclass
class Server:
    port: int
    database_url: str

    def written(self) -> int:
        """Accepted writes so far, as PostgreSQL counts them (every write adds one audit row)."""
        with psycopg.connect(self.database_url) as conn:
            row = conn.execute("SELECT count(*) FROM flag_audit").fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture(scope="module")
def server(postgres_url: str, redis_url: str) -> Iterator[Server]:
    database_url = create_database(postgres_url)
    migrate(database_url)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "FLAGS_ENV": f"hostile{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": f"{REPO / 'runtime'}:{REPO}",
    }
    argv = [sys.executable, "-c", START, str(READ_DEADLINE_SECONDS)]
    process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving http://"), line
        yield Server(int(line.rsplit(":", 1)[1]), database_url)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def exchange(port: int, raw: bytes, *, half_close: bool = True) -> tuple[int, dict[str, str]]:
    """Send `raw`, read the answer until the server closes; (status, JSON body). Never waits past WAIT_SECONDS."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)  # the body ends here, whatever its headers said
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def post(headers: str, body: bytes, path: str = "/admin/flags") -> bytes:
    start = f"POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n"
    return (start + headers + "\r\n").encode() + body


def sized(body: bytes, path: str = "/admin/flags") -> bytes:
    """Well framed: the exact Content-Length."""
    return post(f"Content-Length: {len(body)}\r\n", body, path)


FLAG = b'{"key": "stored-by-mistake", "enabled": true}'
CHUNKED = "Transfer-Encoding: chunked\r\n"
SIZED = f"Content-Length: {len(FLAG)}\r\n"
HOSTILE = {
    "chunk size negative": post(CHUNKED, b"-2d\r\n" + FLAG + b"\r\n0\r\n\r\n"),
    "chunk size with 0x": post(CHUNKED, b"0x2d\r\n" + FLAG + b"\r\n0\r\n\r\n"),
    "chunk size with a sign": post(CHUNKED, b"+2d\r\n" + FLAG + b"\r\n0\r\n\r\n"),
    "chunk size with an underscore": post(CHUNKED, b"2_d\r\n" + FLAG + b"\r\n0\r\n\r\n"),
    "chunk size not hex": post(CHUNKED, b"zz\r\n" + FLAG + b"\r\n0\r\n\r\n"),
    "chunk longer than its size": post(CHUNKED, b"20\r\n" + FLAG + b"\r\n0\r\n\r\n"),
    "chunk shorter than its size": post(CHUNKED, b"40\r\n" + FLAG),
    "chunked without its last chunk": post(CHUNKED, b"2d\r\n" + FLAG + b"\r\n"),
    "Transfer-Encoding not ending in chunked": post("Transfer-Encoding: gzip\r\n" + SIZED, FLAG),
    "body shorter than Content-Length": post("Content-Length: 100\r\n", FLAG),
    "Content-Length with a sign": post(f"Content-Length: +{len(FLAG)}\r\n", FLAG),
    "Content-Length twice, different": post(SIZED + "Content-Length: 5\r\n", FLAG),
    "invalid UTF-8": sized(b'{"key": "stored-by-mistake\xff", "enabled": true}'),
    "a lone surrogate as UTF-8 bytes": sized(b'{"key": "k", "enabled": true, "description": "\xed\xa0\x80"}'),
    "a lone surrogate escape": sized(b'{"key": "k", "enabled": true, "description": "\\ud800"}'),
    "a variant of 1e400": sized(
        b'{"key": "k", "enabled": true, "variants": {"a": 1e400, "b": 1.0}, "defaultVariant": "a", "offVariant": "b"}'
    ),
    "a repeated key": sized(b'{"key": "k", "enabled": true, "enabled": false}'),
    "nesting 1000 deep": sized(b'{"key": "k", "enabled": true, "description": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
    "a bulk context with a lone surrogate": sized(
        b'{"context": {"targetingKey": "u\\udfff1234"}}', path="/ofrep/v1/evaluate/flags"
    ),
}


@pytest.mark.parametrize("raw", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_framing_and_bodies_are_parse_errors_and_write_nothing(server: Server, raw: bytes) -> None:
    before = server.written()

    status, body = exchange(server.port, raw)

    assert (status, body["errorCode"]) == (400, "PARSE_ERROR"), body
    assert set(body) <= {"errorCode", "errorDetails", "key"} and body["errorDetails"]
    assert server.written() == before


def test_a_well_framed_chunked_flag_is_stored(server: Server) -> None:
    """The control: the same bytes, framed right, do write (so the cases above could have)."""
    before = server.written()

    status, body = exchange(server.port, post(CHUNKED, b"2d\r\n" + FLAG + b"\r\n0\r\n\r\n"))

    assert (status, body["key"]) in {(201, "stored-by-mistake"), (200, "stored-by-mistake")}
    assert server.written() == before + 1


def test_a_malformed_request_line_is_answered_in_the_contract_shape(server: Server) -> None:
    status, body = exchange(server.port, b"GET /flags a b HTTP/1.1\r\nHost: test\r\n\r\n")

    assert (status, body["errorCode"]) == (400, "PARSE_ERROR")


def test_a_body_that_never_arrives_is_refused_at_the_deadline_and_frees_the_worker(server: Server) -> None:
    """The client keeps its connection open with the body unfinished: 400 at the read deadline, not a held worker."""
    before = server.written()

    status, body = exchange(server.port, post("Content-Length: 100\r\n", FLAG), half_close=False)

    assert (status, body["errorCode"]) == (400, "PARSE_ERROR")
    assert exchange(server.port, b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")[0] == 200
    assert server.written() == before


def test_a_trickling_client_does_not_hold_the_only_worker(server: Server) -> None:
    """Headers sent a byte at a time, each well within any per-receive timeout, for longer than WAIT_SECONDS."""
    stop = threading.Event()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            for byte in b"GET /health HTTP/1.1\r\nX-Slow: " + b"x" * 1000:
                if stop.wait(0.2):
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    return  # the server gave up on us: what this test wants

    slow = threading.Thread(target=trickle, daemon=True)
    slow.start()
    try:
        time.sleep(0.5)  # the trickler's request has begun and holds the worker
        status, _ = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    finally:
        stop.set()
        slow.join(timeout=5)
    assert status == 200


ODD_TARGETS = [
    b"GET /flags/%ff%fe",
    b"GET /flags/%00",
    b"GET /flags/%ed%a0%80",
    b"GET /flags/\xff\xc3(",
    b"GET /flags?after=%ed%a0%80",
    b"GET /flags?limit=%00&limit=1e400",
    b"GET /admin/flags/%ed%a0%80/history?after=-1",
    b"POST /ofrep/v1/evaluate/flags/%ed%a0%80%0a",
    b"DELETE /admin/flags/a%2fb",
]


@pytest.mark.parametrize("target", ODD_TARGETS, ids=[t.decode("latin-1") for t in ODD_TARGETS])
def test_odd_bytes_in_paths_and_queries_are_4xx_in_the_contract_shape(server: Server, target: bytes) -> None:
    before = server.written()
    headers = f"Host: test\r\nConnection: close\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nX-Request-Id: \x7f\xff\r\n"
    body = b'{"context": {}}'
    request = target + b" HTTP/1.1\r\n" + headers.encode("latin-1") + b"Content-Length: %d\r\n\r\n" % len(body) + body

    status, answer = exchange(server.port, request)

    assert 400 <= status < 500 and set(answer) <= {"errorCode", "errorDetails", "key"} and answer["errorCode"]
    assert server.written() == before
