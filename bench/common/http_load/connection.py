"""One request to one server over HTTP/1.1: what to send (`Target`), when an answer is whole, a kept connection."""

from __future__ import annotations

import socket
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Target:
    """One kind of request to one server."""

    name: str
    port: int
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.path}"

    def request_bytes(self) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


class ResponseParser:
    """Just enough HTTP/1.1 to know when one answer is complete: Content-Length or chunked."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.buffer = bytearray()
        self.header_end = -1
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.close = False

    def feed(self, data: bytes) -> bool:
        """Add bytes; True once a whole answer is in."""
        self.buffer += data
        if self.header_end < 0 and not self._parse_head():
            return False
        body = memoryview(self.buffer)[self.header_end :]
        if self.status in (204, 304) or (self.length is not None and len(body) >= self.length):
            return True
        return self.chunked and _chunked_complete(bytes(body))

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        self.header_end = end + 4
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        self.status = int(rest.split(" ", 1)[0])
        self.close = version == "HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                self.length = int(value)
            elif name == "transfer-encoding":
                self.chunked = "chunked" in value
            elif name == "connection":
                self.close = value == "close"
        return True

    def body(self) -> bytes:
        return bytes(self.buffer[self.header_end :])


def _chunked_complete(body: bytes) -> bool:
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return False
        size = int(body[position:line_end].split(b";")[0] or b"0", 16)
        if size == 0:
            return body.find(b"\r\n\r\n", line_end) >= 0 or body.endswith(b"\r\n\r\n")
        position = line_end + 2 + size + 2
        if position > len(body):
            return False


class Connection:
    """A keep-alive client connection (blocking socket: recv is only called once select says readable)."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.sock = socket.create_connection((HOST, target.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.parser = ResponseParser()
        self.intended = 0
        self.uses = 0

    def close(self) -> None:
        self.sock.close()


def one_request(target: Target, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and body of one request on a fresh connection (checks, not measurements)."""
    conn = Connection(target, timeout)
    try:
        conn.sock.sendall(target.request_bytes())
        while not conn.parser.feed(conn.sock.recv(65536) or b""):
            pass
        return conn.parser.status, conn.parser.body()
    finally:
        conn.close()


def closed_mid_answer() -> bytes:
    raise ConnectionResetError("the server closed the connection mid-answer")
