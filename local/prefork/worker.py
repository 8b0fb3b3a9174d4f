"""One worker process, from fork to exit: it serves the shared listening socket until it is stopped."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, NoReturn
from wsgiref.simple_server import WSGIServer

from local.prefork.connection import KeepAliveRequestHandler
from local.prefork.signals import STOP_SIGNALS, die_with_parent
from local.prefork.worker_loop import WorkerLoop

log = logging.getLogger("local.prefork")  # the name its log lines had before the split into modules


def worker_main(
    app: Any, sock: socket.socket, *, host: str, port: int, master: int, on_worker_start: Callable[[], None] | None
) -> NoReturn:
    """A worker never returns into the parent's code: it leaves by os._exit, running no atexit or finally."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the master stops us
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        die_with_parent(master)
        if on_worker_start is not None:
            on_worker_start()  # like Lambda's init phase: e.g. warm the in-process cache
        serve_forever(app, sock, host=host, port=port)
    except BaseException:  # noqa: BLE001 - report anything, then leave without touching the parent's state
        log.exception("worker failed")
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve_forever(app: Any, sock: socket.socket, *, host: str, port: int) -> None:
    server = WSGIServer((host, port), KeepAliveRequestHandler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_name, server.server_port = host, port
    server.setup_environ()
    server.set_app(app)
    sock.setblocking(False)  # every worker waits in select; only one wins each accept
    WorkerLoop(server, sock).run()
