"""Stop signals: the master unwinds on SIGINT, SIGTERM or SIGHUP; a worker dies with its master."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
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


def send_signal(pid: int, signum: int) -> None:
    """Signal `pid`, which may have exited already."""
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
