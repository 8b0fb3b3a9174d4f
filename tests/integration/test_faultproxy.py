"""The fault proxy over real sockets, between redis-py and a real Redis (bench/common/faultproxy/).

Each mode as a client sees it: replies late, a silent connection, bytes held and delivered late, a
reset, a reply cut short, a slow link; and the proxy switched (and pointed at another server) at run
time, in-process and as the child process drills use.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import redis

from bench.common.faultproxy import FaultProxy, ProxyProcess
from bench.common.faults import Direction, Fault, Mode
from tests.servers import running_redis

pytestmark = [pytest.mark.real, pytest.mark.timeout(60)]
BIG = b"x" * 25_000


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    running = FaultProxy(("127.0.0.1", port))
    running.start()
    yield running
    running.stop()


def client(port: int, timeout: float = 1.0) -> redis.Redis:
    return redis.Redis(port=port, socket_timeout=timeout, retry_on_timeout=False, retry=None)


def timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - started


def test_in_pass_mode_the_proxy_is_transparent(proxy: FaultProxy) -> None:
    through = client(proxy.port)

    assert through.ping() and through.echo("hello") == b"hello"


def test_replies_are_delayed_and_commands_are_not(proxy: FaultProxy, redis_url: str) -> None:
    through = client(proxy.port)
    through.ping()
    proxy.set(Fault(Mode.DELAY, delay_ms=200, direction=Direction.DOWN))

    assert 0.19 <= timed(through.ping) < 1.0  # the upper bound only says: not stuck


def test_dropped_connections_stay_open_and_silent(proxy: FaultProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.3) as raw:
        raw.sendall(b"PING\r\n")
        assert raw.recv(100) == b"+PONG\r\n"
        proxy.set(Fault(Mode.DROP))
        raw.sendall(b"PING\r\n")

        with pytest.raises(TimeoutError):  # neither an answer nor a close (which would read as b"")
            raw.recv(100)
    assert proxy.snapshot()["dropped_bytes"] >= len(b"PING\r\n")


def test_reset_resets_open_connections_and_new_ones(proxy: FaultProxy) -> None:
    through = client(proxy.port)
    through.ping()
    proxy.set(Fault(Mode.RESET))

    with pytest.raises(redis.ConnectionError):
        through.ping()
    with pytest.raises(redis.ConnectionError):
        client(proxy.port).ping()


def test_close_after_n_bytes_cuts_a_reply_short(proxy: FaultProxy, redis_url: str) -> None:
    redis.Redis.from_url(redis_url).set("faultproxy-big", BIG)
    through = client(proxy.port)
    through.ping()
    proxy.set(Fault(Mode.CLOSE_AFTER, close_after_bytes=1000, direction=Direction.DOWN))

    with pytest.raises(redis.ConnectionError):
        through.get("faultproxy-big")


def test_a_bandwidth_limit_slows_a_large_reply(proxy: FaultProxy, redis_url: str) -> None:
    redis.Redis.from_url(redis_url).set("faultproxy-big", BIG)
    through = client(proxy.port, timeout=5)
    through.ping()
    proxy.set(Fault(Mode.BANDWIDTH, bytes_per_second=100_000, direction=Direction.DOWN))

    assert 0.2 <= timed(lambda: through.get("faultproxy-big")) < 2.0  # 25 kB at 100 kB/s: 0.25 s


def test_healing_restores_service_for_new_connections(proxy: FaultProxy) -> None:
    proxy.set(Fault(Mode.RESET))
    proxy.set(Fault())

    assert client(proxy.port).ping()


def test_the_proxy_process_is_switched_over_its_control_channel(redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    child = ProxyProcess(("127.0.0.1", port))
    try:
        through = client(child.port)
        through.ping()
        child.set(Fault(Mode.DELAY, delay_ms=300, direction=Direction.DOWN))
        assert timed(through.ping) >= 0.29
        child.set(Fault())
        assert timed(through.ping) < 0.25
        assert child.snapshot()["mode"] == "pass"
    finally:
        child.stop()


def test_held_bytes_wait_out_the_hold_then_arrive_in_order(proxy: FaultProxy, redis_url: str) -> None:
    direct = redis.Redis.from_url(redis_url)
    direct.delete("faultproxy-held")
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.3) as raw:
        raw.sendall(b"PING\r\n")
        assert raw.recv(100) == b"+PONG\r\n"
        proxy.set(Fault(Mode.HOLD))
        raw.sendall(b"INCR faultproxy-held\r\n")

        with pytest.raises(TimeoutError):  # no answer and no close while held
            raw.recv(100)
        assert direct.get("faultproxy-held") is None  # the command has not reached Redis either
        proxy.set(Fault())
        raw.settimeout(2.0)
        assert raw.recv(100) == b":1\r\n"  # delivered late, as TCP delivers what was sent into a black hole


def test_retargeting_sends_new_connections_to_the_new_upstream_and_resets_open_ones(
    proxy: FaultProxy, redis_url: str
) -> None:
    with running_redis() as other:
        redis.Redis.from_url(redis_url).set("faultproxy-where", "first")
        redis.Redis.from_url(other.url).set("faultproxy-where", "other")
        assert client(proxy.port).get("faultproxy-where") == b"first"
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2.0) as raw:
            raw.sendall(b"PING\r\n")
            assert raw.recv(100) == b"+PONG\r\n"

            proxy.retarget(("127.0.0.1", other.port))

            with pytest.raises(ConnectionResetError):
                raw.recv(100)
        assert client(proxy.port).get("faultproxy-where") == b"other"


def test_the_proxy_process_is_retargeted_over_its_control_channel(redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with running_redis() as other:
        redis.Redis.from_url(other.url).set("faultproxy-where", "other")
        child = ProxyProcess(("127.0.0.1", port))
        try:
            child.retarget(("127.0.0.1", other.port))
            assert client(child.port).get("faultproxy-where") == b"other"
        finally:
            child.stop()
