"""Server child processes: spawned in their own session, stopped by pid, never left behind.

Each server runs in a new session, so a Ctrl-C sent to the caller's process group does not kill it
half-way: the caller stops its own workers first, then its servers, in order, by pid. Three nets
catch what a caller forgets: an atexit hook (normal exit or an uncaught exception), a
parent-death signal (the caller killed outright, via `setpriv --pdeathsig`), and `stop()` being
safe to call twice.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
_LIVE: dict[int, ServerProcess] = {}


class ServerStartError(Exception):
    """A server did not become ready; the message carries the end of its log."""


@dataclass(eq=False)
class ServerProcess:
    """One running server that this process started; `pid` is the server itself, not a wrapper."""

    name: str
    url: str
    host: str
    port: int
    pid: int
    data_dir: Path
    kind: str = "embedded"
    version: str = ""
    log_path: Path | None = None
    stop_signal: int = signal.SIGTERM
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _start_again: Callable[[], ServerProcess] | None = field(default=None, repr=False)
    _temp_dir: Path | None = field(default=None, repr=False)
    _owner: int = field(default_factory=os.getpid, repr=False)

    def __post_init__(self) -> None:
        _LIVE[id(self)] = self

    @property
    def alive(self) -> bool:
        if self._popen is not None and self._owner == os.getpid():
            return self._popen.poll() is None
        return pid_alive(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (Redis: SIGTERM; PostgreSQL: SIGINT, its fast shutdown), then SIGKILL if slow."""
        self._halt(timeout)
        _LIVE.pop(id(self), None)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server and every process of its group (PostgreSQL's backends too)."""
        self._signal_group(signal.SIGKILL)
        self._wait(10.0)

    def pause(self) -> None:
        """SIGSTOP the whole server: connections stay open and nothing answers (a hung server)."""
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)

    def restart(self) -> ServerProcess:
        """Stop (if still running) and start again on the same port with the same data."""
        if self._start_again is None:
            raise RuntimeError("this server cannot be restarted from here")
        self._halt(15.0)
        _LIVE.pop(id(self), None)
        again = self._start_again()
        if again._temp_dir is None:
            again._temp_dir, self._temp_dir = self._temp_dir, None
        elif self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        return again

    def _halt(self, timeout: float) -> None:
        if self.alive:
            self._signal_group(signal.SIGCONT)
            self._signal(self.stop_signal)
            if not self._wait(timeout):
                log.warning("server ignored its stop signal, killing it", extra={"server": self.name, "pid": self.pid})
                self.kill()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def _signal_group(self, signum: int) -> None:
        if not self.alive:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def _wait(self, timeout: float) -> bool:
        if self._popen is not None and self._owner == os.getpid():
            try:
                self._popen.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        return wait_gone(self.pid, timeout)


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            state = stat_file.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _wrapper(user_ids: tuple[int, int] | None, death_signal: int) -> list[str]:
    """`setpriv` drops to the server user and arms the parent-death signal, then execs the server.

    The parent-death signal fires when the thread that forked exits, so it is armed only from the
    main thread (a server started from a helper thread would die with that thread).
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return []
    args = [setpriv]
    if user_ids is not None:
        args += [f"--reuid={user_ids[0]}", f"--regid={user_ids[1]}", "--clear-groups"]
    if threading.current_thread() is threading.main_thread():
        args += ["--pdeathsig", signal.Signals(death_signal).name.removeprefix("SIG")]
    return [*args, "--"] if len(args) > 1 else []


def spawn(
    argv: Sequence[str], *, log_path: Path, user_ids: tuple[int, int] | None = None, death_signal: int
) -> subprocess.Popen[bytes]:
    """Start a server in its own session, its output appended to `log_path`."""
    prefix = _wrapper(user_ids, death_signal)
    extra: dict[str, object] = {}
    if user_ids is not None and not prefix:
        extra = {"user": user_ids[0], "group": user_ids[1], "extra_groups": []}
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            [*prefix, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "LC_ALL": "C"},
            **extra,
        )


def log_tail(path: Path | None, lines: int = 6) -> str:
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as file:
        file.seek(max(0, file.seek(0, os.SEEK_END) - 4096))
        text = file.read().decode("utf-8", "replace")
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def wait_ready(
    popen: subprocess.Popen[bytes], probe: Callable[[], bool], *, what: str, log_path: Path, timeout: float
) -> None:
    """Poll `probe` until it holds; fail fast if the server exits, and stop it if it never gets ready."""
    deadline = time.monotonic() + timeout
    while not probe():
        if popen.poll() is not None:
            raise ServerStartError(f"{what} exited with status {popen.returncode}: {log_tail(log_path)}")
        if time.monotonic() > deadline:
            popen.kill()
            popen.wait()
            raise ServerStartError(f"{what} was not ready after {timeout:.0f} s: {log_tail(log_path)}")
        time.sleep(0.02)


def port_in_use_failure(error: ServerStartError) -> bool:
    """A free port taken by someone else between our check and the server's bind: worth one more try."""
    return "already in use" in str(error).lower()


def running_servers() -> list[ServerProcess]:
    """The servers this process started and has not stopped."""
    return [server for server in _LIVE.values() if server._owner == os.getpid()]  # noqa: SLF001


@atexit.register
def stop_all() -> None:
    """Stop every server this process started and has not stopped (a crashed test session, an exception)."""
    for server in running_servers():  # a forked child never stops its parent's servers
        server.stop(timeout=10.0)
