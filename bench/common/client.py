"""A minimal HTTP/1.1 client for load generators: one request per connection, as the local server serves them.

Cheaper per request than `requests` (which matters on 2 shared cores), and it never raises: a
refused, reset or timed-out request is an `Answer` with status 0 and the error's name, so a load
loop counts it as a failed read instead of dying.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer at all (see `error`)
    headers: dict[str, str]
    body: bytes
    start: float  # time.monotonic() (one clock for every process of the machine) before connecting
    end: float  # after the last byte
    error: str = ""

    @property
    def latency(self) -> float:
        return self.end - self.start

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def request(
    port: int, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> Answer:
    """Send one request to 127.0.0.1:`port` and read the whole answer (the server closes the connection)."""
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    start = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(raw)
            received = _read_all(conn)
    except OSError as error:
        return Answer(0, {}, b"", start, time.monotonic(), type(error).__name__)
    return _parse(received, start, time.monotonic())


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes, start: float, end: float) -> Answer:
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if not sep or len(parts) < 2 or not parts[1].isdigit():
        return Answer(0, {}, b"", start, end, "BadAnswer")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return Answer(int(parts[1]), headers, body, start, end)


def _unchunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)
