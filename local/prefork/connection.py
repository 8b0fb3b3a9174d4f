"""One connection: each request read within a deadline and answered over HTTP/1.1, its answer in one send."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from local.prefork.sockets import READ_TIMEOUT_SECONDS

log = logging.getLogger("local.prefork")  # the name its log lines had before the split into modules
REQUEST_READ_SECONDS = 10.0  # a whole request: its line, headers and body (a trickling client holds no worker longer)
CLOSE_CONNECTION = "flagservice.close_connection"  # an environ key the app sets when the body was not consumed
ERROR_CODES = {400: "PARSE_ERROR", 413: "PAYLOAD_TOO_LARGE", 414: "PAYLOAD_TOO_LARGE", 431: "PAYLOAD_TOO_LARGE"}
INTERNAL_ERROR_BODY = b'{"errorCode": "GENERAL", "errorDetails": "internal error"}'


class DeadlineReader(io.RawIOBase):
    """The receiving side of a connection, with one deadline for a whole request when `deadline` is set.

    A timeout per receive alone would let a client that sends a byte every few seconds (or a body
    shorter than its Content-Length, never finished) hold a worker for as long as it likes.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self.deadline is None:
            try:
                return self.sock.recv_into(buffer)
            except BlockingIOError:
                return None  # a non-blocking peek found nothing
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(left)
        try:
            return self.sock.recv_into(buffer)
        finally:
            self.sock.settimeout(READ_TIMEOUT_SECONDS)


class RequestHandler(WSGIRequestHandler):
    """wsgiref's handler, with the client's raw headers and target kept and writes buffered into one send."""

    wbufsize = 1 << 16
    protocol_version = "HTTP/1.1"  # so `Expect: 100-continue` is answered (curl otherwise waits a second)
    server_version = "flagservice-local"

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ["RAW_URI"] = self.path
        environ["flagservice.raw_headers"] = list(self.headers.items())
        return environ

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The contract's error shape, not the stdlib's HTML page, for what it refuses itself (a bad request line)."""
        self.log_error("code %d, message %s", code, message)
        detail = message or self.responses.get(code, ("error",))[0]
        body = json.dumps({"errorCode": ERROR_CODES.get(code, "GENERAL"), "errorDetails": detail}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_expect_100(self) -> bool:
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("http", extra={"client": self.client_address[0], "line": format % args})


class KeepAliveServerHandler(ServerHandler):
    """wsgiref's per-request handler speaking HTTP/1.1, saying whether the connection stays open."""

    http_version = "1.1"
    keep_alive = False
    failed = False
    headers: Any  # set by wsgiref per request (its stubs do not declare them)
    environ: dict[str, Any]
    request_handler: Any
    error_headers = [("Content-Type", "application/json"), ("Content-Length", str(len(INTERNAL_ERROR_BODY)))]
    error_body = INTERNAL_ERROR_BODY

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        self.keep_alive = (
            self.keep_alive and "Content-Length" in self.headers and not self.environ.get(CLOSE_CONNECTION)
        )
        self.headers["Connection"] = "keep-alive" if self.keep_alive else "close"

    def handle_error(self) -> None:
        self.failed = True
        super().handle_error()


class KeepAliveRequestHandler(RequestHandler):
    """One per connection: `serve_one()` answers one request and tells whether the connection may stay open.

    Unlike socketserver's handlers, constructing it does not serve the connection: the worker calls
    `serve_one()` each time the connection has a request, and `close()` when it is done with it.
    """

    def __init__(self, request: socket.socket, client_address: Any, server: WSGIServer) -> None:
        self.request, self.client_address, self.server = request, client_address, server
        self.setup()

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the stdlib's reader, replaced by one that keeps the request's deadline
        self.reader = DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self.reader)

    def serve_one(self, *, may_keep: bool) -> bool:
        """Read one request (within REQUEST_READ_SECONDS) and answer it; True if the connection stays open."""
        self.reader.deadline = time.monotonic() + REQUEST_READ_SECONDS
        try:
            return self._serve_one(may_keep=may_keep)
        finally:
            self.reader.deadline = None

    def _serve_one(self, *, may_keep: bool) -> bool:
        self.close_connection = True
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            return False  # the client closed the connection
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return False
        if not self.parse_request():  # an error answer was sent
            return False
        handler = KeepAliveServerHandler(
            self.rfile, cast(IO[bytes], self.wfile), self.get_stderr(), self.get_environ(), multithread=False
        )
        handler.request_handler = self
        handler.keep_alive = may_keep and not self.close_connection
        app = cast(WSGIServer, self.server).get_app()
        assert app is not None  # set before any worker serves
        handler.run(app)
        return handler.keep_alive and not handler.failed

    def has_buffered_request(self) -> bool:
        """A pipelined request already read into our buffer (select cannot see it on the socket)."""
        self.connection.setblocking(False)
        try:
            return bool(cast(io.BufferedReader, self.rfile).peek(1))
        except OSError:
            return False
        finally:
            self.connection.settimeout(READ_TIMEOUT_SECONDS)

    def close(self) -> None:
        try:
            self.finish()
        except OSError:
            pass
        finally:
            self.server.shutdown_request(self.connection)
