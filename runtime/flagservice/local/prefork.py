"""A pre-fork WSGI server: N worker processes, each serving one request at a time, like Lambda containers.

Processes, never threads: the Powertools resolver keeps the current request in class attributes and
Logger/Metrics are singletons (DESIGN.md). Each connection carries one request and is closed (as
gunicorn's sync workers do): a worker parked on an idle keep-alive connection could serve nobody
else. Nagle is disabled on every accepted socket and each answer leaves in one write, or a
stdlib answer stalls about 40 ms on delayed ACKs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
READ_TIMEOUT_SECONDS = 30.0
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

    def handle_expect_100(self) -> bool:
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("http", extra={"client": self.client_address[0], "line": format % args})


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
        server = WSGIServer((self.host, self.port), RequestHandler, bind_and_activate=False)
        server.socket.close()
        server.socket = self.sock
        server.server_name, server.server_port = self.host, self.port
        server.setup_environ()
        server.set_app(self.app)
        while True:
            conn, address = accept_one(self.sock)
            try:
                server.finish_request(conn, address)
            except (TimeoutError, ConnectionError):
                pass  # the client went quiet or away: nothing to answer
            except Exception:
                server.handle_error(conn, address)
            finally:
                server.shutdown_request(conn)

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
