"""Lambda's init phase stays time-boxed and clean when Secrets Manager does not answer (DESIGN.md, Runtime layers).

Secrets Manager is played by local TCP servers that never answer: one accepts connections and
stays silent (the read timeout), one never accepts them (the connect timeout: its queue is full).
The SDK's defaults (60 s connect, 60 s read, up to 5 attempts) would hold a cold start for minutes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from flagservice import handler, wiring
from flagservice.adapters import database_secret
from flagservice.adapters.database_secret import (
    SECRETS_CONNECT_TIMEOUT_SECONDS,
    SECRETS_READ_TIMEOUT_SECONDS,
    SECRETS_TOTAL_ATTEMPTS,
    database_conninfo,
)

ARN = "arn:aws:secretsmanager:eu-west-1:000000000000:secret:flags-db-AbCdEf"
BACKOFF_SECONDS = 1.0  # botocore's standard mode waits at most this long before its first retry
pytestmark = pytest.mark.timeout(120)


class SilentServer:
    """Accepts every connection, reads what it is sent, never answers; counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[SilentServer]:
    server = SilentServer()
    use_endpoint(monkeypatch, server.port)
    yield server
    server.close()


@pytest.fixture
def unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A port whose accept queue is full: a new connection is never established (no RST, just silence)."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=0)
    filler = socket.create_connection(sock.getsockname())  # takes the one place in the queue
    use_endpoint(monkeypatch, sock.getsockname()[1])
    yield sock.getsockname()[1]
    filler.close()
    sock.close()


def use_endpoint(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    database_secret.secrets_provider.cache_clear()
    monkeypatch.setattr(wiring, "_service", None)


@pytest.fixture(autouse=True)
def _fresh_provider() -> Iterator[None]:
    database_secret.secrets_provider.cache_clear()
    yield
    database_secret.secrets_provider.cache_clear()


def timed_failure(call: object) -> float:
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - any SDK error: what matters is when it comes
        call()  # type: ignore[operator]
    return time.monotonic() - started


def test_a_silent_secrets_endpoint_is_given_up_after_two_short_attempts(silent_endpoint: SilentServer) -> None:
    elapsed = timed_failure(lambda: database_conninfo(database_url=None, secret_arn=ARN))

    assert len(silent_endpoint.accepted) == SECRETS_TOTAL_ATTEMPTS == 2
    worst = SECRETS_TOTAL_ATTEMPTS * SECRETS_READ_TIMEOUT_SECONDS + BACKOFF_SECONDS
    assert elapsed < 2 * worst  # a correctness deadline (2x margin); the SDK's defaults: minutes


def test_an_unreachable_secrets_endpoint_is_given_up_at_the_connect_timeout(unreachable_endpoint: int) -> None:
    elapsed = timed_failure(lambda: database_conninfo(database_url=None, secret_arn=ARN))

    worst = SECRETS_TOTAL_ATTEMPTS * SECRETS_CONNECT_TIMEOUT_SECONDS + BACKOFF_SECONDS
    assert elapsed < 2 * worst


def test_warm_with_a_silent_secrets_endpoint_returns_in_time_and_leaks_nothing_when_retried(
    monkeypatch: pytest.MonkeyPatch, silent_endpoint: SilentServer
) -> None:
    """The cache's AUTH secret is read when Redis is first connected to, inside warm(): a silent
    Secrets Manager endpoint costs warm() its time box, and warming again starts nothing new."""
    monkeypatch.setenv("REDIS_AUTH_SECRET_ARN", ARN)
    threads: list[set[int | None]] = []
    for attempt in range(3):
        started = time.monotonic()
        handler.warm()  # swallows the failure: a cold start stays merely cold
        elapsed = time.monotonic() - started
        assert elapsed < 2 * (SECRETS_TOTAL_ATTEMPTS * SECRETS_READ_TIMEOUT_SECONDS + BACKOFF_SECONDS), attempt
        threads.append({thread.ident for thread in threading.enumerate() if thread.is_alive()})
    assert threads[2] <= threads[1], "a second warm() must not start more pools or threads"
