"""The sample API Gateway events and docker-compose.yml: parseable, complete, and consistent.

Docker is not available on these machines, so the compose file is checked as data, not run.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.gateway import build_event

REPO = Path(__file__).resolve().parents[2]
EVENTS = sorted((REPO / "events").glob("*.json"))
REQUIRED = {
    "resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
    "multiValueQueryStringParameters", "pathParameters", "body", "isBase64Encoded", "requestContext",
}  # fmt: skip
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def local_server_event() -> dict[str, Any]:
    """What the local server sends the handler, for comparison with the samples."""
    environ = {
        "REQUEST_METHOD": "GET", "RAW_URI": "/flags?limit=1", "SERVER_PORT": "3000", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(), "flagservice.raw_headers": [("Host", "127.0.0.1:3000")],
    }  # fmt: skip
    return build_event(environ, b"")


def test_the_sample_events_cover_every_kind_of_call() -> None:
    calls = {(e["httpMethod"], e["path"]) for e in map(load, EVENTS)}

    assert ("GET", "/health") in calls
    assert ("GET", "/flags") in calls
    assert any(m == "GET" and p.startswith("/flags/") for m, p in calls)
    assert ("POST", "/admin/flags") in calls
    assert any(m == "PATCH" and p.startswith("/admin/flags/") for m, p in calls)
    assert any(m == "DELETE" and p.startswith("/admin/flags/") for m, p in calls)
    assert any(m == "POST" and p.startswith("/ofrep/v1/evaluate/flags/") for m, p in calls)


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_event_is_a_valid_rest_proxy_event(path: Path) -> None:
    event = load(path)

    assert set(event) >= REQUIRED
    assert event["httpMethod"] in METHODS
    assert event["path"].startswith("/")
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": event["path"][1:]}
    assert event["body"] is None or isinstance(event["body"], str)
    assert isinstance(event["isBase64Encoded"], bool)
    context = event["requestContext"]
    assert context["requestId"] and context["stage"] and context["identity"]["sourceIp"]
    assert context["httpMethod"] == event["httpMethod"]


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_single_and_multi_value_fields_agree(path: Path) -> None:
    event = load(path)

    assert {k: v[-1] for k, v in event["multiValueHeaders"].items()} == event["headers"]
    multi_query = event["multiValueQueryStringParameters"]
    single_query = event["queryStringParameters"]
    assert (multi_query is None) == (single_query is None)
    if multi_query:
        assert {k: v[-1] for k, v in multi_query.items()} == single_query


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_json_bodies_parse_and_admin_calls_carry_a_bearer_token(path: Path) -> None:
    event = load(path)

    if event["body"] is not None:
        assert event["headers"]["Content-Type"] == "application/json"
        assert isinstance(json.loads(event["body"]), dict)
    if event["path"].startswith("/admin/"):
        assert event["headers"]["Authorization"].startswith("Bearer ")
        assert len(event["headers"]["Authorization"].split(" ", 1)[1]) >= 32


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_samples_have_every_field_the_local_server_sends(path: Path) -> None:
    event, local = load(path), local_server_event()

    assert set(local) <= set(event)
    assert set(local["requestContext"]) <= set(event["requestContext"])
    assert set(local["requestContext"]["identity"]) <= set(event["requestContext"]["identity"])


@pytest.mark.parametrize("path", EVENTS, ids=lambda p: p.name)
def test_the_handler_answers_every_sample_without_a_server_error(path: Path, fake_service: object) -> None:
    from flagservice.handler import lambda_handler

    answer = lambda_handler(load(path), None)

    assert 200 <= answer["statusCode"] < 500


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_has_redis_postgres_and_redis_commander(compose: dict[str, Any]) -> None:
    assert {"redis", "postgres", "redis-commander"} <= set(compose["services"])


@pytest.mark.parametrize("name", ["redis", "postgres", "redis-commander"])
def test_compose_services_have_a_healthcheck_a_pinned_image_and_loopback_ports(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]

    assert service["healthcheck"]["test"]
    assert ":" in service["image"]
    assert service["ports"]
    for mapping in service["ports"]:
        assert str(mapping).startswith("127.0.0.1:"), "published on loopback only"


def host_port(mapping: object) -> str:
    """The published host port of "127.0.0.1:${VAR:-16379}:6379", with the variable at its default."""
    return re.sub(r"\$\{\w+:-(\d+)\}", r"\1", str(mapping)).split(":")[1]


def test_compose_leaves_the_usual_host_ports_free(compose: dict[str, Any]) -> None:
    published = {host_port(m) for s in compose["services"].values() for m in s.get("ports", [])}

    assert published == {"16379", "15432", "8081"}


def test_compose_commander_waits_for_a_healthy_redis(compose: dict[str, Any]) -> None:
    commander = compose["services"]["redis-commander"]

    assert commander["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis:6379" in commander["environment"]["REDIS_HOSTS"]


def test_compose_postgres_credentials_match_the_documented_database_url(compose: dict[str, Any]) -> None:
    env = compose["services"]["postgres"]["environment"]
    documented = (REPO / "docs" / "local.md").read_text()

    url = f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@127.0.0.1:15432/{env['POSTGRES_DB']}"
    assert url in documented
