"""One worker's loop: a select over the shared listening socket and the connections the worker keeps open."""

from __future__ import annotations

import collections
import selectors
import socket
import time
from wsgiref.simple_server import WSGIServer

from local.prefork.connection import KeepAliveRequestHandler
from local.prefork.sockets import accept_one, readable

KEEPALIVE_IDLE_SECONDS = 5.0
KEEPALIVE_MAX_CONNECTIONS = 64


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
            if now - since > KEEPALIVE_IDLE_SECONDS and not readable(connection.connection):
                self._forget(connection)
                connection.close()
