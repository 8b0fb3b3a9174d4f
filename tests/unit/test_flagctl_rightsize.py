"""`flagctl rightsize --env <env>`: the Lambda request it makes (checked by botocore's Stubber against AWS's model)
and what it prints. moto's Lambda cannot run the function without Docker, so the answer is stubbed here; the
function itself is tested on moto in test_rightsizing_function.py."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from flagctl import cli, rightsize

RECOMMENDATION = {
    "action": "upsize", "node_type_now": "cache.t4g.small", "node_type_recommended": "cache.t4g.medium",
    "reason": "memory p95 86.0 % is above 80 %", "nodes": 2, "monthly_usd_now": 37.38,
    "monthly_usd_recommended": 75.92,
    "evidence": {"memory_p95_percent": 86.0, "memory_hours": 2160, "eviction_hours": 0,
                 "engine_cpu_p95_percent": 9.5, "connections_p95": 36.0},
    "prices": {"date": "2026-12-05", "region": "us-east-1", "source": "..."},
}  # fmt: skip


def stubbed(payload: Any, *, function_error: str | None = None, env: str = "prod") -> tuple[Any, Stubber]:
    client = boto3.client("lambda", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    body = json.dumps(payload).encode()
    answer: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
    if function_error:
        answer["FunctionError"] = function_error
    expected = {"FunctionName": f"flagservice-{env}-rightsizing", "InvocationType": "RequestResponse",
                "Payload": b'{"source": "flagctl"}'}  # fmt: skip
    stub.add_response("invoke", answer, expected)
    stub.activate()
    return client, stub


def run(argv: list[str], client: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "lambda_client", lambda **_: client)
    out, err = io.StringIO(), io.StringIO()
    return cli.main(argv, out=out, err=err), out.getvalue(), err.getvalue()


def test_it_invokes_the_environments_function_and_prints_the_recommendation(monkeypatch: pytest.MonkeyPatch) -> None:
    client, stub = stubbed(RECOMMENDATION)

    status, out, _ = run(["rightsize", "--env", "prod"], client, monkeypatch)

    stub.assert_no_pending_responses()
    assert status == 0
    assert out.splitlines()[0] == "UPSIZE: cache.t4g.small -> cache.t4g.medium (2 nodes)"
    assert "$37.38/month now, $75.92/month after (list prices of 2026-12-05, us-east-1)" in out
    assert "memory p95 86.0 % (2160 hours)" in out


def test_json_prints_the_whole_recommendation(monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = stubbed(RECOMMENDATION, env="dev")

    status, out, _ = run(["--json", "rightsize", "--env", "dev"], client, monkeypatch)

    assert status == 0 and json.loads(out) == RECOMMENDATION


def test_a_failed_function_is_one_line_and_a_nonzero_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = stubbed({"errorMessage": "1 validation error for RightsizingSettings", "errorType": "ValidationError"},
                        function_error="Unhandled")  # fmt: skip

    status, out, err = run(["rightsize", "--env", "prod"], client, monkeypatch)

    assert status != 0 and out == ""
    assert err == "flagctl: flagservice-prod-rightsizing failed: 1 validation error for RightsizingSettings " \
                  "(see its log group)\n"  # fmt: skip


def test_a_missing_function_and_a_refusal_are_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("lambda", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    stub.add_client_error("invoke", "ResourceNotFoundException", "Function not found", 404)
    stub.add_client_error("invoke", "AccessDeniedException", "not authorized to perform lambda:InvokeFunction", 403)
    stub.activate()

    assert "is the staging service stack deployed" in run(["rightsize", "--env", "staging"], client, monkeypatch)[2]
    assert "not authorized" in run(["rightsize", "--env", "staging"], client, monkeypatch)[2]


def test_an_unknown_environment_is_refused_before_any_call() -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["rightsize", "--env", "qa"])


def test_the_client_never_retries_an_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    client = rightsize.lambda_client(region="eu-central-1", profile=None)

    assert client.meta.config.retries["total_max_attempts"] == 1
    assert client.meta.config.read_timeout >= 120
