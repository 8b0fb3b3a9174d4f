"""The metrics release safety and on-call alarms read, as the handler prints them (EMF lines on stdout).

tests/infrastructure/test_alarm_metrics.py checks that the alarms name exactly these metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from flagservice import telemetry
from flagservice.handler import lambda_handler
from flagservice.service import FlagService
from tests.apigw import make_event as event


@dataclass
class Context:
    function_version: str = "7"
    function_name: str = "flags"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:flags:live"
    aws_request_id: str = "req-1"


def emf_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" in line]


def metric_names(line: dict[str, Any]) -> set[str]:
    return {m["Name"] for directive in line["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}


def dimension_sets(line: dict[str, Any]) -> list[set[str]]:
    return [set(names) for directive in line["_aws"]["CloudWatchMetrics"] for names in directive["Dimensions"]]


@pytest.fixture(autouse=True)
def _no_pool_watch() -> Iterator[None]:
    """No pool is watched unless a test says so (wiring registers the real one once per container)."""
    saved = telemetry._pool_peak  # noqa: SLF001 - a module global
    telemetry._pool_peak = None  # noqa: SLF001
    yield
    telemetry._pool_peak = saved  # noqa: SLF001


def per_version_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [line for line in emf_lines(capsys.readouterr().out) if "FunctionVersion" in line]


def test_a_500_answer_counts_as_a_server_error_and_an_internal_error_of_its_version(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", "-1")  # invalid settings: the handler answers 500 GENERAL

    answer = lambda_handler(event("GET", "/flags/checkout"), Context(function_version="7"))

    assert answer["statusCode"] == 500
    lines = per_version_lines(capsys)
    assert {name for line in lines for name in metric_names(line)} == {"ServerErrorAnswers", "InternalErrorAnswers"}
    assert all(line["FunctionVersion"] == "7" for line in lines)
    assert all(len(dimension_sets(line)) == 1 and "FunctionVersion" in dimension_sets(line)[0] for line in lines)


def test_a_503_answer_is_a_server_error_but_not_an_internal_one(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry.record_answer(503, "12")

    (line,) = per_version_lines(capsys)
    assert metric_names(line) == {"ServerErrorAnswers"} and line["FunctionVersion"] == "12"


@pytest.mark.parametrize("status", [200, 304, 404, 412])
def test_answers_below_500_count_nothing_per_version(status: int, capsys: pytest.CaptureFixture[str]) -> None:
    telemetry.record_answer(status, "7")

    assert per_version_lines(capsys) == []


def test_the_version_comes_from_the_lambda_context_else_the_runtime_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "9")

    assert telemetry.function_version(Context(function_version="7")) == "7"
    assert telemetry.function_version(None) == "9"


def test_a_cached_read_reports_its_latency_apart_from_all_reads(
    fake_service: FlagService, capsys: pytest.CaptureFixture[str]
) -> None:
    from flagservice.flags.model import FlagDefinition

    fake_service.put_flag(FlagDefinition.model_validate({"key": "theme", "enabled": True}), actor="t", if_match=None)
    capsys.readouterr()
    outcomes = []
    for _ in range(3):
        answer = lambda_handler(event("GET", "/flags/theme"), Context())
        outcomes.append(answer["multiValueHeaders"]["X-Cache"][0])
        (line,) = [line for line in emf_lines(capsys.readouterr().out) if "LookupLatency" in line]
        assert ("LookupLatencyHit" in line) == (outcomes[-1] == "HIT")
        assert "FunctionVersion" not in line  # per-request metrics keep the service's dimensions only

    assert "HIT" in outcomes


def test_the_pool_peak_of_the_request_goes_out_with_its_metrics(
    fake_service: FlagService, capsys: pytest.CaptureFixture[str]
) -> None:
    peaks = iter([3, 1])
    telemetry.watch_pool_peak(lambda: next(peaks))

    lambda_handler(event("GET", "/health"), Context())
    lambda_handler(event("GET", "/health"), Context())

    lines = [line for line in emf_lines(capsys.readouterr().out) if "RedisPoolPeakInUse" in line]
    assert [line["RedisPoolPeakInUse"] for line in lines] == [[3.0], [1.0]]
    assert all("FunctionVersion" not in line for line in lines)
