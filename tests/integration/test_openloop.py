"""Open-loop generator (bench/common/openloop.py) vs servers that stall: they cannot hide by receiving fewer requests.

A closed-loop reader sends its next request only after an answer, so a stalled server sees fewer
requests and every latency looks like one service time. Open loop, every request due is sent (or
counted failed), and latency runs from the time it was due.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bench.common.openloop import OpenLoop, Stream

pytestmark = pytest.mark.timeout(60)
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock
    sock.close()


def slow_server(listener: socket.socket, service_time: float, stop: threading.Event) -> None:
    """One request at a time, each answered `service_time` after it arrived (keep-alive)."""
    listener.settimeout(0.1)
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(0.5)
            while not stop.is_set():
                try:
                    if not conn.recv(65536):
                        break
                except TimeoutError:
                    continue
                time.sleep(service_time)
                conn.sendall(ANSWER)


def stream(listener: socket.socket, rate: float) -> Stream:
    return Stream("probe", 0, listener.getsockname()[1], rate, lambda: ("", REQUEST))


def test_a_server_that_never_answers_gets_every_request_due_and_each_one_fails(listener: socket.socket) -> None:
    probe = stream(listener, rate=100.0)
    loop = OpenLoop([probe], timeout=0.3, connections=4).start()
    time.sleep(1.0)
    ran = time.monotonic() - loop.started  # a busy machine wakes this thread late: count by the time it ran
    loop.stop()

    due = 100.0 * ran
    assert due - 10 <= len(probe.replies) <= due + 10, (ran, len(probe.replies))  # every request due, answered or
    assert all(reply.status == 0 for reply in probe.replies)  # not (10: the requests of the lag allowed below)
    assert max(loop.lag) < 0.1  # the generator itself kept to the schedule


def test_latency_runs_from_the_due_time_so_queueing_behind_a_slow_server_counts(listener: socket.socket) -> None:
    # Given a server that answers one request at a time, in 50 ms each
    stop = threading.Event()
    server = threading.Thread(target=slow_server, args=(listener, 0.05, stop), daemon=True)
    server.start()
    # When requests are due every 25 ms for a second
    probe = stream(listener, rate=40.0)  # one every 25 ms, served one at a time in 50 ms each
    loop = OpenLoop([probe], timeout=5.0, connections=1).start()
    time.sleep(1.0)
    loop.stop()
    stop.set()

    # Then latencies grow with the queue (from each request's due time), far past 50 ms
    answered = [reply for reply in probe.replies if reply.status == 200]
    assert len(answered) >= 35
    assert max(reply.latency for reply in answered) > 0.5  # a closed loop would have said 50 ms every time
