"""The local server's HTTP layer: requests become API Gateway proxy events, proxy results become answers.

A stand-in handler (echo_handler.py) sits behind the real pre-fork server, started as its own process.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from local.prefork.sockets import accept_one, listen
from tests.integration.echo_handler import BINARY
from tests.servers import pids_alive, port_listening, traversable_tmp_dir, wait_gone

REPO = Path(__file__).resolve().parents[2]
ECHO = "tests.integration.echo_handler.lambda_handler"
pytestmark = pytest.mark.timeout(120)


@dataclass
class Gateway:
    process: subprocess.Popen[str]
    url: str
    port: int

    def workers(self) -> list[int]:
        """Pids of the server's worker processes (its children)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid and fields[0] not in ("Z", "X"):
                    found.append(int(entry.name))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                raise


def start_gateway(workers: int, *, ignoring_sigint: bool = False) -> Gateway:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'runtime'}:{REPO}"}
    argv = [sys.executable, "-m", "local.serve", ECHO, "--port", "0", "--workers", str(workers)]
    if ignoring_sigint:  # as a shell starts a background job: SIGINT inherited as ignored
        argv = ["bash", "-c", 'trap "" INT; exec "$@"', "bash", *argv]
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("serving http://"), line
    url = line.split()[1]
    return Gateway(process, url, int(url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    server = start_gateway(workers=2)
    yield server
    server.stop()


def echo(gateway: Gateway, method: str, target: str, **kwargs: Any) -> dict[str, Any]:
    answer = requests.request(method, gateway.url + target, timeout=10, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.json()["event"]  # type: ignore[no-any-return]


def test_path_query_and_repeated_headers_become_a_proxy_event(gateway: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.putrequest("GET", "/flags/a%20b?limit=1&limit=2&after=")
    for value in ("one", "two"):
        conn.putheader("X-Multi", value)
    conn.endheaders()
    event = json.loads(conn.getresponse().read())["event"]

    assert (event["httpMethod"], event["path"], event["resource"]) == ("GET", "/flags/a b", "/{proxy+}")
    assert event["pathParameters"] == {"proxy": "flags/a b"}
    assert event["queryStringParameters"] == {"limit": "2", "after": ""}
    assert event["multiValueQueryStringParameters"] == {"limit": ["1", "2"], "after": [""]}
    assert event["headers"]["X-Multi"] == "two"
    assert event["multiValueHeaders"]["X-Multi"] == ["one", "two"]
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["requestId"]
    assert (event["body"], event["isBase64Encoded"]) == (None, False)


def test_no_query_string_gives_null_parameters(gateway: Gateway) -> None:
    event = echo(gateway, "GET", "/health")

    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_utf8_body_travels_as_text(gateway: Gateway) -> None:
    event = echo(gateway, "POST", "/admin/flags", data='{"key": "ünïcode"}'.encode())

    assert (event["body"], event["isBase64Encoded"]) == ('{"key": "ünïcode"}', False)


def test_non_utf8_body_travels_base64_encoded(gateway: Gateway) -> None:
    event = echo(gateway, "POST", "/admin/flags", data=b"\xff\xfe not utf-8")

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe not utf-8"


def test_body_over_32_kib_still_reaches_the_handler(gateway: Gateway) -> None:
    event = echo(gateway, "POST", "/admin/flags", data=b"a" * 100_000)

    assert len(event["body"]) == 100_000


def test_chunked_body_is_reassembled(gateway: Gateway) -> None:
    event = echo(gateway, "POST", "/admin/flags", data=iter([b"abc", b"def" * 1000]))

    assert event["body"] == "abc" + "def" * 1000


def test_body_over_one_mebibyte_is_refused_with_413_in_the_contract_shape(gateway: Gateway) -> None:
    answer = requests.post(gateway.url + "/admin/flags", data=b"x" * (2 << 20), timeout=10)

    assert answer.status_code == 413
    assert answer.json()["errorCode"] == "PAYLOAD_TOO_LARGE"
    assert set(answer.json()) == {"errorCode", "errorDetails"}


def test_multi_value_and_single_headers_are_merged_like_api_gateway(gateway: Gateway) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    conn.request("GET", "/multi")
    headers = conn.getresponse().getheaders()

    assert [v for k, v in headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert [v for k, v in headers if k == "X-Listed"] == ["x", "y"]
    assert [v for k, v in headers if k == "X-Single"] == ["one"]


def test_base64_result_is_sent_as_bytes(gateway: Gateway) -> None:
    answer = requests.get(gateway.url + "/binary", timeout=10)

    assert answer.content == BINARY
    assert answer.headers["Content-Type"] == "application/octet-stream"


def test_answer_without_content_type_defaults_to_json(gateway: Gateway) -> None:
    answer = requests.get(gateway.url + "/anything", timeout=10)

    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Echo"] == "yes"


@pytest.mark.parametrize("path", ["/crash", "/malformed"])
def test_failing_handler_is_a_502_without_internals_and_the_server_goes_on(gateway: Gateway, path: str) -> None:
    answer = requests.get(gateway.url + path, timeout=10)

    assert answer.status_code == 502
    assert answer.json() == {"errorCode": "GENERAL", "errorDetails": "the function failed"}
    assert requests.get(gateway.url + "/health", timeout=10).status_code == 200


def test_accepted_sockets_have_nagle_disabled() -> None:
    server = listen("127.0.0.1", 0)
    client = socket.create_connection(server.getsockname(), timeout=5)
    conn, _ = accept_one(server)
    try:
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for sock in (conn, client, server):
            sock.close()


def barrier_requests(gateway: Gateway, count: int, timeout: float) -> list[dict[str, Any]]:
    folder = traversable_tmp_dir("flagservice-barrier-")
    target = f"{gateway.url}/barrier?dir={folder}&n={count}&timeout={timeout}"
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: requests.get(target, timeout=30).json(), range(count)))
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    return answers


def test_workers_serve_requests_concurrently_in_separate_processes(gateway: Gateway) -> None:
    answers = barrier_requests(gateway, 2, timeout=10)

    assert all(answer["met"] for answer in answers)
    assert len({answer["pid"] for answer in answers}) == 2
    assert len(gateway.workers()) == 2


def test_one_worker_serves_one_request_at_a_time() -> None:
    single = start_gateway(workers=1)
    try:
        answers = barrier_requests(single, 2, timeout=1)
    finally:
        single.stop()

    assert not any(answer["met"] for answer in answers)


def test_a_killed_worker_is_replaced(gateway: Gateway) -> None:
    victim = gateway.workers()[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_gone(victim, 10)

    answers = [requests.get(gateway.url + "/health", timeout=10).status_code for _ in range(4)]
    assert answers == [200] * 4
    assert wait_until(lambda: len(gateway.workers()) == 2)


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    ("signum", "ignoring_sigint"), [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGINT, True)]
)
def test_a_stop_signal_stops_every_worker_and_frees_the_port(signum: int, ignoring_sigint: bool) -> None:
    server = start_gateway(workers=2, ignoring_sigint=ignoring_sigint)
    try:
        assert wait_until(lambda: len(server.workers()) == 2)
        workers = server.workers()
        os.killpg(server.process.pid, signum)  # the whole group, as Ctrl-C in a terminal does
        server.process.wait(timeout=20)
    finally:
        server.stop()

    assert pids_alive([server.process.pid, *workers]) == []
    assert not port_listening(server.port)
