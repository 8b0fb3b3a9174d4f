"""Generated garbage at every route through the handler (in-memory stores): never a 5xx, never a refused write.

CONTRACT.md section 2: every error has the contract's shape, and a refused request writes nothing.
The fixed cases of each rule live in tests/contract; these tests look for the inputs nobody listed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagservice import wiring
from flagservice.service import FlagService
from tests.apigw import ADMIN_TOKEN, BEARER, Answer, call
from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository

ROUTES = [
    ("GET", "/flags/{key}"),
    ("GET", "/flags"),
    ("POST", "/ofrep/v1/evaluate/flags/{key}"),
    ("POST", "/ofrep/v1/evaluate/flags"),
    ("POST", "/admin/flags"),
    ("PATCH", "/admin/flags/{key}"),
    ("DELETE", "/admin/flags/{key}"),
    ("POST", "/admin/flags/{key}/revert"),
    ("GET", "/admin/flags/{key}/history"),
    ("GET", "/admin/cache/stats"),
    ("GET", "/health"),
]
BODY_ROUTES = [(method, path) for method, path in ROUTES if method in ("POST", "PATCH")]
ERROR_FIELDS = {"errorCode", "errorDetails", "key"}

# Text that reaches the handler in a Lambda event can hold anything, lone surrogates included.
characters = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from("\x00\r\n\\\"'{}[]%/"))
garbage_text = st.lists(characters, max_size=60).map("".join)  # st.text would drop the lone surrogates
keys = st.one_of(st.just("checkout"), st.just("absent"), garbage_text)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | garbage_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(garbage_text, inner, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.none(),
    garbage_text,
    st.binary(max_size=80).map(lambda raw: {"raw": raw}),
    st.dictionaries(garbage_text, json_values, max_size=5).map(lambda document: json.dumps(document)),
    json_values.map(lambda context: json.dumps({"context": context})),
    st.dictionaries(garbage_text, json_values, max_size=4).map(lambda context: json.dumps({"context": context})),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "If-Match": garbage_text,
        "If-None-Match": garbage_text,
        "X-Request-Id": garbage_text,
        "Authorization": st.one_of(st.just(BEARER["Authorization"]), garbage_text.map(lambda t: "Bearer " + t)),
        "Content-Type": garbage_text,
    },
)
queries = st.none() | st.dictionaries(st.one_of(st.sampled_from(["limit", "after"]), garbage_text), garbage_text)


def fresh_service(monkeypatch: pytest.MonkeyPatch) -> tuple[FlagService, InMemoryFlagRepository]:
    """A service with one flag, `checkout`, so that writes to it could happen if anything let them."""
    repository = InMemoryFlagRepository()
    service = FlagService(repository, InMemoryFlagCache())
    monkeypatch.setattr(wiring, "get_service", lambda: service)
    assert call("POST", "/admin/flags", body={"key": "checkout", "enabled": True}, headers=BEARER).status == 201
    return service, repository


def send(method: str, path: str, key: str, body: Any, headers: dict[str, str], query: Any) -> Answer:
    raw = body.get("raw") if isinstance(body, dict) else None
    text = None if isinstance(body, dict) else body
    return call(method, path.replace("{key}", key), body=text, raw=raw, headers=headers, query=query)


def assert_well_formed(answer: Answer, path: str) -> None:
    """No 5xx; an error has the contract's shape; the answer can travel as UTF-8 with clean header values."""
    assert answer.status < 500, answer.body
    answer.body.encode("utf-8")
    assert not any("\r" in value or "\n" in value for value in answer.headers.values()), answer.headers
    if answer.status >= 400 and path != "/health":
        assert set(answer.json) <= ERROR_FIELDS and answer.json["errorCode"] and answer.json["errorDetails"]


def writes(repository: InMemoryFlagRepository) -> tuple[int, int]:
    return repository.revision(), len(repository.audit)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(route=st.sampled_from(ROUTES), key=keys, body=bodies, headers=headers, query=queries)
def test_garbage_at_any_route_is_never_a_5xx_and_a_refusal_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, route: tuple[str, str], key: str, body: Any, headers: dict[str, str], query: Any
) -> None:
    _, repository = fresh_service(monkeypatch)
    before = writes(repository)

    answer = send(*route, key, body, headers, query)

    assert_well_formed(answer, route[1])
    if answer.status >= 300:
        assert writes(repository) == before


HOSTILE_FRAGMENTS = [
    "1e400",
    "-1e400",
    "1" + "0" * 400 + ".5",
    '"\\ud800"',
    '"x\\udfff"',
    '{"\\udc00": 1}',
    '{"a": 1, "a": 1}',
    '{"targetingKey": "a", "targetingKey": "b"}',
    "[" * 65 + "]" * 65,
    "[" * 3000 + "]" * 3000,
]
PLACEHOLDER = "__hostile__"


@st.composite
def hostile_documents(draw: st.DrawFn) -> str:
    """A JSON object with one hostile fragment placed anywhere inside it (a member or an element)."""
    document: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
    containers: list[Any] = [document]
    for node in containers:  # grows while it is walked: every nested object and list, breadth first
        containers += [child for child in (node.values() if isinstance(node, dict) else node) if _container(child)]
    target = draw(st.sampled_from(containers))
    if isinstance(target, dict):
        target["hostile slot"] = PLACEHOLDER
    else:
        target.insert(draw(st.integers(0, len(target))), PLACEHOLDER)
    return json.dumps(document).replace(f'"{PLACEHOLDER}"', draw(st.sampled_from(HOSTILE_FRAGMENTS)))


def _container(value: Any) -> bool:
    return isinstance(value, (dict, list))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(route=st.sampled_from(BODY_ROUTES), body=hostile_documents())
def test_a_hostile_fragment_anywhere_in_a_body_is_a_parse_error_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, route: tuple[str, str], body: str
) -> None:
    _, repository = fresh_service(monkeypatch)
    before = writes(repository)

    answer = send(*route, "checkout", body, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, None)

    assert (answer.status, answer.json["errorCode"]) == (400, "PARSE_ERROR"), (body, answer.body)
    assert writes(repository) == before
