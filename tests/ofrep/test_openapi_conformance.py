"""schemathesis over a local copy of OFREP's OpenAPI spec, against the live local server with the seeded flags.

tests/ofrep/README.md names the upstream file and commit, and where protocol 0.3.0's event-stream additions
(openapi.0.3.0-additions.yaml) come from; the copy is the upstream file with those additions and only the
deviations TOOLCHAIN.md allows, which the first test proves. The run keeps every default check on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema_rs
import pytest
import requests
import schemathesis
import yaml

from tests.ofrep import flags
from tests.ofrep.conftest import LocalServer
from tests.ofrep.schemathesis_hooks import expected_rejection

pytestmark = [pytest.mark.real, pytest.mark.timeout(240)]
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SPEC = HERE / "openapi.yaml"
UPSTREAM = HERE / "openapi.upstream.yaml"
ADDITIONS = HERE / "openapi.0.3.0-additions.yaml"
EVALUATE_PATHS = ("/ofrep/v1/evaluate/flags/{key}", "/ofrep/v1/evaluate/flags")
# The optional OFREP extension the service does not implement (CONTRACT.md section 2 has no such route).
NOT_IMPLEMENTED = "/ofrep/v1/configuration"
MAX_EXAMPLES = 150
SEED = 20240207
ADDED_RESPONSES = {
    "413": {
        "description": "Payload too large - the request body is over the service's limit",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/generalErrorResponse"}}},
    },
    "503": {
        "description": "Service unavailable - a store the answer needs is down",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/generalErrorResponse"}}},
    },
}


def with_protocol_0_3_0(upstream: dict[str, Any], additions: dict[str, Any]) -> dict[str, Any]:
    """The upstream spec with 0.3.0's event streams: the query parameters, `eventStreams`, their schemas."""
    spec = copy.deepcopy(upstream)
    for section, entries in additions["components"].items():
        spec["components"].setdefault(section, {}).update(copy.deepcopy(entries))
    for path in EVALUATE_PATHS:
        spec["paths"][path]["post"].setdefault("parameters", []).extend(copy.deepcopy(additions["operationParameters"]))
    schemas = spec["components"]["schemas"]
    server_only = next(part for part in schemas["serverEvaluationSuccess"]["allOf"] if "properties" in part)
    for success in (schemas["bulkEvaluationSuccess"], server_only):
        success["properties"].update(copy.deepcopy(additions["successProperties"]))
    return spec


def with_allowed_deviations(upstream: dict[str, Any]) -> dict[str, Any]:
    """The upstream spec with exactly TOOLCHAIN.md's deviations (those that apply to this revision of it)."""
    spec = copy.deepcopy(upstream)
    spec["security"] = [{}]
    schemas = spec["components"]["schemas"]
    for part in schemas["evaluationSuccess"]["allOf"]:
        if "oneOf" in part and all(ref["$ref"].endswith("Flag") for ref in part["oneOf"]):
            part["anyOf"] = part.pop("oneOf")
        reason = part.get("properties", {}).get("reason", {})
        if "enum" in reason and "DEFAULT" not in reason["enum"]:
            reason["enum"].append("DEFAULT")
    context = schemas["context"]
    if "targetingKey" in context.get("required", []):
        context["required"].remove("targetingKey")
    for path in EVALUATE_PATHS:
        responses = spec["paths"][path]["post"]["responses"]
        assert "429" in responses, "this revision declares 429 itself; add ours if it ever stops"
        responses.update(copy.deepcopy(ADDED_RESPONSES))
    return spec


def test_the_copy_is_upstream_with_0_3_0_additions_and_only_the_allowed_deviations() -> None:
    upstream = yaml.safe_load(UPSTREAM.read_text())
    additions = yaml.safe_load(ADDITIONS.read_text())

    assert yaml.safe_load(SPEC.read_text()) == with_allowed_deviations(with_protocol_0_3_0(upstream, additions))
    assert yaml.safe_load(SPEC.read_text()) != with_allowed_deviations(upstream)


def test_the_readme_names_the_upstream_commit_and_hash() -> None:
    readme = (HERE / "README.md").read_text()
    digest = hashlib.sha256(UPSTREAM.read_bytes()).hexdigest()

    assert re.search(r"\b[0-9a-f]{40}\b", readme), "the README must name the upstream commit"
    assert digest in readme, "openapi.upstream.yaml changed: refresh it and the README together"
    assert hashlib.sha256(ADDITIONS.read_bytes()).hexdigest() in readme, "the additions changed: say so in the README"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "PARSE_ERROR"), ([{}], "PARSE_ERROR"), ({}, "INVALID_CONTEXT"), ({"context": "x"}, "INVALID_CONTEXT"),
        ({"context": {"targetingKey": 4}}, "INVALID_CONTEXT"), ({"context": {}}, None),
        ({"context": {"targetingKey": "u"}}, None),
    ],
)  # fmt: skip
def test_the_hook_knows_which_schema_valid_bodies_the_contract_refuses(body: Any, code: str | None) -> None:
    from schemathesis.core import NOT_SET

    assert expected_rejection(NOT_SET if body is None else body) == code


def run_schemathesis(server: LocalServer, reports: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "SCHEMATHESIS_HOOKS": "tests.ofrep.schemathesis_hooks",
        "PYTHONPATH": f"{REPO}:{REPO / 'runtime'}",
    }  # fmt: skip
    argv = [
        str(Path(sys.executable).parent / "st"), "--config-file", str(HERE / "schemathesis.toml"), "--no-color",
        "run", str(SPEC), "--url", server.url, "--exclude-path", NOT_IMPLEMENTED,
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1", "--continue-on-failure",
        "--generation-database", "none", "--request-timeout", "10",
        "--report", "json,ndjson", "--report-json-path", str(reports / "run.json"),
        "--report-ndjson-path", str(reports / "events.ndjson"),
    ]  # fmt: skip
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=200)


def responses_by_operation(events: Path) -> dict[str, set[int]]:
    """Every status each operation answered during the run, from schemathesis' event log."""
    seen: dict[str, set[int]] = {}
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for interaction in recorder.get("interactions", {}).values():
            if interaction.get("response"):
                seen.setdefault(recorder["label"], set()).add(interaction["response"]["status_code"])
    return seen


def query_names_sent(events: Path) -> set[str]:
    """Every query parameter name schemathesis put in a request during the run."""
    names: set[str] = set()
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        for interaction in (finished or {}).get("recorder", {}).get("interactions", {}).values():
            names.update(parse_qs(urlsplit(interaction["request"]["uri"]).query, keep_blank_values=True))
    return names


def checks_run(events: Path) -> set[str]:
    names: set[str] = set()
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        for results in (finished or {}).get("recorder", {}).get("checks", {}).values():
            names.update(result["name"] for result in results)
    return names


def test_schemathesis_finds_no_failure_with_every_default_check(ofrep_server: LocalServer, tmp_path: Path) -> None:
    done = run_schemathesis(ofrep_server, tmp_path)

    summary = json.loads((tmp_path / "run.json").read_text())
    assert (done.returncode, summary["failures"], summary["errors"]) == (0, [], []), done.stdout[-20000:]
    assert (summary["operations"]["tested"], summary["complete"]) == (2, True)
    statuses = responses_by_operation(tmp_path / "events.ndjson")
    assert {200, 404} <= statuses["POST /ofrep/v1/evaluate/flags/{key}"], statuses
    assert 200 in statuses["POST /ofrep/v1/evaluate/flags"], statuses
    ran = checks_run(tmp_path / "events.ndjson")
    assert {"response_schema_conformance", "positive_data_acceptance", "negative_data_rejection"} <= ran
    assert "ofrep_rejections_follow_the_contract" in ran
    assert {"flagConfigEtag", "flagConfigLastModified"} <= query_names_sent(tmp_path / "events.ndjson")


@pytest.fixture(scope="module")
def spec() -> Any:
    return schemathesis.openapi.from_path(SPEC)


SINGLE_CASES = [
    *[(key, {"context": {"targetingKey": "user-42", "country": "DE"}}, 200) for key in (
        flags.BOOLEAN, flags.STRING, flags.INTEGER, flags.FLOAT, flags.OBJECT, flags.DISABLED, flags.SPLIT)],
    ("no-such-flag", {"context": {}}, 404),
    ("bad key!", {"context": {}}, 404),
    ("team/checkout", {"context": {}}, 404),
    ("line\nbreak", {"context": {}}, 404),
    ("\u00a8", {"context": {}}, 404),
    (flags.SPLIT, {"context": {"country": "DE"}}, 400),
    (flags.BOOLEAN, {"context": []}, 400),
]  # fmt: skip


@pytest.mark.parametrize(("key", "body", "status"), SINGLE_CASES, ids=[f"{c[0]!r}-{c[2]}" for c in SINGLE_CASES])
def test_each_kind_of_single_answer_conforms(
    spec: Any, ofrep_server: LocalServer, key: str, body: Any, status: int
) -> None:
    operation = spec["/ofrep/v1/evaluate/flags/{key}"]["POST"]
    case = operation.Case(path_parameters={"key": key}, body=body, media_type="application/json")

    response = case.call_and_validate(base_url=ofrep_server.url)

    assert response.status_code == status, response.text
    assert response.json()["key"] == key


def test_bulk_answers_with_error_items_and_304_conform(spec: Any, ofrep_server: LocalServer) -> None:
    operation = spec["/ofrep/v1/evaluate/flags"]["POST"]
    body = {"context": {"country": "DE"}}  # no targetingKey: the split flags are error items

    first = operation.Case(body=body, media_type="application/json").call_and_validate(base_url=ofrep_server.url)
    etag = first.headers["etag"][0]
    again = operation.Case(body=body, headers={"If-None-Match": etag}, media_type="application/json")
    unchanged = again.call_and_validate(base_url=ofrep_server.url)

    items = {item["key"]: item for item in first.json()["flags"]}
    assert items.keys() == {flag["key"] for flag in flags.all_flags()}
    assert items[flags.SPLIT]["errorCode"] == "TARGETING_KEY_MISSING" and items[flags.DISABLED]["reason"] == "DISABLED"
    assert unchanged.status_code == 304


def test_bulk_answers_advertise_an_event_stream_as_the_spec_describes(spec: Any, ofrep_server: LocalServer) -> None:
    operation = spec["/ofrep/v1/evaluate/flags"]["POST"]

    answer = operation.Case(body={"context": {}}, media_type="application/json").call_and_validate(
        base_url=ofrep_server.url
    )

    streams = answer.json()["eventStreams"]
    assert [stream["type"] for stream in streams] == ["sse"], streams
    assert "since=" in streams[0]["url"], "the URL carries the revision the answer was built from"


def test_a_re_fetch_with_event_metadata_conforms(spec: Any, ofrep_server: LocalServer) -> None:
    operation = spec["/ofrep/v1/evaluate/flags"]["POST"]
    unknown = {"flagConfigEtag": "not-a-revision", "flagConfigLastModified": "Thu, 20 Feb 2026 21:28:18 GMT"}

    for query in ({"flagConfigEtag": "1", "flagConfigLastModified": 1771622898}, unknown):
        case = operation.Case(body={"context": {}}, query=query, media_type="application/json")
        assert case.call_and_validate(base_url=ofrep_server.url).status_code == 200, query


def first_event(url: str) -> dict[str, str]:
    """The fields of the first event (not comment) a stream sends, read as an EventSource would."""
    fields: dict[str, str] = {}
    with requests.get(url, stream=True, timeout=10, headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines(chunk_size=1, decode_unicode=True):  # an event is smaller than a chunk
            if not line:
                if "data" in fields:
                    return fields
                continue
            name, _, value = line.partition(":")
            if name:  # a line starting with ":" is a comment (a heartbeat)
                fields[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended before its first event")


def test_the_event_stream_sends_events_the_spec_describes(spec: Any, ofrep_server: LocalServer) -> None:
    schemas = yaml.safe_load(SPEC.read_text())["components"]["schemas"]
    bulk = requests.post(f"{ofrep_server.url}/ofrep/v1/evaluate/flags", json={"context": {}}, timeout=10).json()
    stale = re.sub(r"since=[^&]*", "since=0", bulk["eventStreams"][0]["url"])  # an older revision: one event at once

    event = first_event(stale)

    jsonschema_rs.Draft202012Validator(schemas["sseEvent"]).validate(event)
    data = json.loads(event["data"])
    jsonschema_rs.Draft202012Validator(schemas["sseEventData"]).validate(data)
    assert data["type"] == "refetchEvaluation" and event.get("id"), event
    operation = spec["/ofrep/v1/evaluate/flags"]["POST"]
    query = {"flagConfigEtag": data["etag"], "flagConfigLastModified": data["lastModified"]}
    refetch = operation.Case(body={"context": {}}, query=query, media_type="application/json")
    assert refetch.call_and_validate(base_url=ofrep_server.url).status_code == 200
