"""A pre-fork WSGI server: N worker processes, each serving one request at a time, like Lambda containers.

Processes, never threads: the Powertools resolver keeps the current request in class attributes and
Logger/Metrics are singletons (DESIGN.md). Nagle is disabled on every accepted socket and each
answer leaves in one write, or a stdlib answer stalls about 40 ms on delayed ACKs.

HTTP/1.1 keep-alive without parking: a worker never blocks on an idle connection. It waits in one
`select` on the shared listening socket and on the connections it keeps, and answers one request
from whichever is ready, so it still serves one request at a time. A new connection is accepted
only when the worker is free to answer it at once (no worker hoards connections another could
serve); an idle kept connection is closed after KEEPALIVE_IDLE_SECONDS, and past
KEEPALIVE_MAX_CONNECTIONS per worker answers say `Connection: close`.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import io
import json
import logging
import os
import select
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import IO, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
READ_TIMEOUT_SECONDS = 30.0  # any one receive or send
REQUEST_READ_SECONDS = 10.0  # a whole request: its line, headers and body (a trickling client holds no worker longer)
KEEPALIVE_IDLE_SECONDS = 5.0
KEEPALIVE_MAX_CONNECTIONS = 64
CLOSE_CONNECTION = "flagservice.close_connection"  # an environ key the app sets when the body was not consumed
WORKER_STOP_SECONDS = 5.0
PR_SET_PDEATHSIG = 1


class StopRequestedError(BaseException):
    """Raised in the main process by SIGTERM or SIGHUP (SIGINT raises KeyboardInterrupt), to unwind and clean up."""


def _raise_stop(signum: int, _frame: Any) -> None:
    raise StopRequestedError(signal.Signals(signum).name)


def install_stop_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so `finally` blocks stop what this process started.

    SIGINT is handled even when inherited as ignored (a shell's background job): whoever sends it
    means to stop the server, and an ignored one would leave it running.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)


def ignore_stop_signals() -> None:
    """While cleaning up, a second Ctrl-C must not abandon servers half-stopped."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


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


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The listening socket, bound before any worker exists, so requests queue while workers start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def accept_one(sock: socket.socket) -> tuple[socket.socket, Any]:
    """Accept a connection with Nagle disabled and a read timeout, so a slow client cannot hold a worker forever."""
    conn, address = sock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.settimeout(READ_TIMEOUT_SECONDS)
    return conn, address


class PreforkServer:
    """Serve one WSGI app from `workers` forked processes sharing one listening socket."""

    def __init__(
        self, app: Any, *, host: str, port: int, workers: int, on_worker_start: Callable[[], None] | None = None
    ) -> None:
        self.app, self.workers_wanted = app, workers
        self.on_worker_start = on_worker_start
        self.sock = listen(host, port)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.workers: dict[int, float] = {}
        self.master = os.getpid()

    def run(self) -> None:
        """Fork the workers and keep them running until SIGINT, SIGTERM or SIGHUP; then stop them all."""
        install_stop_signals()
        try:
            while True:
                self._reap_and_respawn()
                time.sleep(0.2)
        except (KeyboardInterrupt, StopRequestedError):
            pass
        finally:
            ignore_stop_signals()
            self.stop_workers()
            self.sock.close()

    def _reap_and_respawn(self) -> None:
        """Replace any worker that died; a worker that dies within a second of starting is replaced a second later."""
        for pid, started in list(self.workers.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del self.workers[pid]
                log.warning("worker exited, starting another", extra={"pid": pid, "status": status})
                if time.monotonic() - started < 1.0:
                    time.sleep(1.0)
        while len(self.workers) < self.workers_wanted:
            self._fork_worker()

    def _fork_worker(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # no stop between fork and recording the pid
        try:
            pid = os.fork()
            if pid == 0:
                self._worker_main()
            self.workers[pid] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _worker_main(self) -> None:
        """A worker never returns into the parent's code: it leaves by os._exit, running no atexit or finally."""
        code = 0
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the master stops us
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            die_with_parent(self.master)
            if self.on_worker_start is not None:
                self.on_worker_start()  # like Lambda's init phase: e.g. warm the in-process cache
            self._serve_forever()
        except BaseException:  # noqa: BLE001 - report anything, then leave without touching the parent's state
            log.exception("worker failed")
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _serve_forever(self) -> None:
        server = WSGIServer((self.host, self.port), KeepAliveRequestHandler, bind_and_activate=False)
        server.socket.close()
        server.socket = self.sock
        server.server_name, server.server_port = self.host, self.port
        server.setup_environ()
        server.set_app(self.app)
        self.sock.setblocking(False)  # every worker waits in select; only one wins each accept
        WorkerLoop(server, self.sock).run()

    def stop_workers(self) -> None:
        """SIGTERM every worker, wait a little, SIGKILL the rest, and reap them all (by pid)."""
        for pid in self.workers:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        while self.workers:
            for pid in list(self.workers):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    del self.workers[pid]
            if time.monotonic() > deadline:
                for pid in self.workers:
                    _signal(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.01)


class WorkerLoop:
    """One worker's loop: answer one request at a time, taking turns between the connections that are ready.

    Fairness: each round answers at most one request per connection, whether select saw it ready or
    its next request was already in our read buffer (pipelined, or sent by a fast client while we
    looked): such a connection waits for the next round instead of being answered again at once,
    so one eager client cannot keep a worker to itself.
    """

    def __init__(self, server: WSGIServer, sock: socket.socket) -> None:
        self.server, self.sock = server, sock
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ, None)
        self.idle_since: dict[KeepAliveRequestHandler, float] = {}
        self.buffered: collections.deque[KeepAliveRequestHandler] = collections.deque()
        self.next_sweep = time.monotonic() + KEEPALIVE_IDLE_SECONDS

    def run(self) -> None:
        while True:
            events = self.selector.select(timeout=0 if self.buffered else KEEPALIVE_IDLE_SECONDS)
            waiting = [self.buffered.popleft() for _ in range(len(self.buffered))]
            for key, _ in events:
                if key.data is None:
                    self._accept_and_serve()
                else:
                    self._serve(key.data)
            for connection in waiting:
                self._serve(connection)
            self._sweep()

    def _accept_and_serve(self) -> None:
        try:
            conn, address = accept_one(self.sock)
        except (BlockingIOError, InterruptedError):
            return  # another worker took it
        except OSError:
            return  # e.g. the client reset before we accepted
        try:
            connection = KeepAliveRequestHandler(conn, address, self.server)
        except OSError:
            self.server.shutdown_request(conn)
            return
        self._serve(connection)

    def _serve(self, connection: KeepAliveRequestHandler) -> None:
        """Answer one request of the connection; keep the connection if both sides want to."""
        self._forget(connection)
        try:
            keep = connection.serve_one(may_keep=len(self.idle_since) < KEEPALIVE_MAX_CONNECTIONS)
            if keep and connection.has_buffered_request():
                self.buffered.append(connection)  # select cannot see bytes we already read: next round
                return
        except (TimeoutError, ConnectionError):
            keep = False  # the client went quiet or away: nothing to answer
        except Exception:
            keep = False
            self.server.handle_error(connection.connection, connection.client_address)
        if keep:
            self.idle_since[connection] = time.monotonic()
            self.selector.register(connection.connection, selectors.EVENT_READ, connection)
        else:
            connection.close()

    def _forget(self, connection: KeepAliveRequestHandler) -> None:
        if self.idle_since.pop(connection, None) is not None:
            self.selector.unregister(connection.connection)

    def _sweep(self) -> None:
        """Close connections idle for longer than KEEPALIVE_IDLE_SECONDS, unless a request has just arrived."""
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + KEEPALIVE_IDLE_SECONDS / 4
        for connection, since in list(self.idle_since.items()):
            if now - since > KEEPALIVE_IDLE_SECONDS and not _readable(connection.connection):
                self._forget(connection)
                connection.close()


def _readable(sock: socket.socket) -> bool:
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGTERM this worker if the master dies outright (SIGKILL): no worker outlives it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(0)
