"""The master process: fork the workers, replace any that die, and stop them all on a stop signal."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from local.prefork.signals import (
    STOP_SIGNALS,
    StopRequestedError,
    ignore_stop_signals,
    install_stop_signals,
    send_signal,
)
from local.prefork.sockets import listen
from local.prefork.worker import worker_main

log = logging.getLogger("local.prefork")  # the name its log lines had before the split into modules
WORKER_STOP_SECONDS = 5.0


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
                worker_main(
                    self.app, self.sock, host=self.host, port=self.port, master=self.master,
                    on_worker_start=self.on_worker_start,
                )
            self.workers[pid] = time.monotonic()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def stop_workers(self) -> None:
        """SIGTERM every worker, wait a little, SIGKILL the rest, and reap them all (by pid)."""
        for pid in self.workers:
            send_signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        while self.workers:
            for pid in list(self.workers):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    del self.workers[pid]
            if time.monotonic() > deadline:
                for pid in self.workers:
                    send_signal(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.01)
