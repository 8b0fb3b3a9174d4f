"""OFREP single and bulk evaluation through the handler, on the fake and on real Redis and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from flagservice.service import FlagService
from tests.apigw import BEARER, call

pytestmark = pytest.mark.usefixtures("service")

SPLIT = {"rollout": [{"variant": "on", "weight": 50}, {"variant": "off", "weight": 50}]}


def create(key: str, **fields: Any) -> None:
    answer = call("POST", "/admin/flags", body={"key": key, "enabled": True, **fields}, headers=BEARER)
    assert answer.status in (200, 201), answer.body


def evaluate(key: str, context: Any = None, **kwargs: Any) -> Any:
    body = kwargs.pop("body", {"context": context if context is not None else {"targetingKey": "user-1"}})
    return call("POST", f"/ofrep/v1/evaluate/flags/{key}", body=body, **kwargs)


def test_static_boolean_flag() -> None:
    create("kill")
    answer = evaluate("kill")
    assert answer.status == 200
    assert answer.json == {
        "key": "kill",
        "value": True,
        "variant": "on",
        "reason": "STATIC",
        "metadata": {"version": 1},
    }


def test_disabled_flag_gives_the_off_variant() -> None:
    create("kill", enabled=False)
    assert evaluate("kill").json | {"metadata": None} == {
        "key": "kill",
        "value": False,
        "variant": "off",
        "reason": "DISABLED",
        "metadata": None,
    }


def test_targeting_match_and_default() -> None:
    rule = {"conditions": [{"attribute": "country", "operator": "in", "values": ["DE"]}], "variant": "b"}
    variants = {"variants": {"a": "blue", "b": "green"}, "defaultVariant": "a", "offVariant": "a"}
    create("colour", rules=[rule], **variants)
    assert (
        evaluate("colour", {"country": "DE"}).json["value"],
        evaluate("colour", {"country": "DE"}).json["reason"],
    ) == (
        "green",
        "TARGETING_MATCH",
    )
    assert evaluate("colour", {"country": "FR"}).json["reason"] == "DEFAULT"


def test_float_values_stay_floats() -> None:
    create("ratio", variants={"low": 1.0, "high": 2.5}, defaultVariant="low", offVariant="low")
    answer = evaluate("ratio")
    assert '"value":1.0' in answer.body and isinstance(answer.json["value"], float)


def test_a_split_without_targeting_key_is_targeting_key_missing() -> None:
    create("split", **SPLIT)
    answer = evaluate("split", {})
    assert (answer.status, answer.json["errorCode"], answer.json["key"]) == (400, "TARGETING_KEY_MISSING", "split")


@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [
        ("missing", {"context": {}}, 404, "FLAG_NOT_FOUND"),
        ("-bad key", {"context": {}}, 404, "FLAG_NOT_FOUND"),
        ("present", "{not json", 400, "PARSE_ERROR"),
        ("present", {"nocontext": {}}, 400, "INVALID_CONTEXT"),
        ("present", {"context": []}, 400, "INVALID_CONTEXT"),
        ("present", {"context": {"targetingKey": 42}}, 400, "INVALID_CONTEXT"),
    ],
)
def test_errors_use_openfeature_codes_with_the_key(key: str, body: Any, status: int, code: str) -> None:
    create("present")
    answer = evaluate(key, body=body)
    assert (answer.status, answer.json["errorCode"]) == (status, code) and answer.json["errorDetails"]
    assert answer.json.get("key") == key


def test_unknown_top_level_fields_are_ignored() -> None:
    create("present")
    assert evaluate("present", body={"context": {}, "extra": 1}).status == 200


def test_bulk_includes_disabled_flags_and_per_flag_errors_and_honours_the_etag() -> None:
    # Given an enabled, a disabled and a split flag
    create("a")
    create("b", enabled=False)
    create("split", **SPLIT)
    body = {"context": {"country": "DE"}}
    # When bulk is asked without a targeting key, every flag is in it: disabled, and the split as an error
    first = call("POST", "/ofrep/v1/evaluate/flags", body=body)
    items = {item["key"]: item for item in first.json["flags"]}
    assert first.status == 200 and set(items) == {"a", "b", "split"}
    assert items["b"]["reason"] == "DISABLED" and items["split"]["errorCode"] == "TARGETING_KEY_MISSING"
    # Then the same context with its ETag is a 304, another context is answered in full
    etag = first.headers["etag"]
    again = call("POST", "/ofrep/v1/evaluate/flags", body=body, headers={"If-None-Match": etag})
    assert (again.status, again.body, again.headers["etag"]) == (304, "", etag)
    other_context = call(
        "POST", "/ofrep/v1/evaluate/flags", body={"context": {"country": "FR"}}, headers={"If-None-Match": etag}
    )
    assert other_context.status == 200
    # And after a write the ETag no longer matches
    call("PATCH", "/admin/flags/a", body={"enabled": False}, headers=BEARER)
    changed = call("POST", "/ofrep/v1/evaluate/flags", body=body, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["etag"] != etag
    assert {i["key"]: i.get("reason") for i in changed.json["flags"]}["a"] == "DISABLED"


def test_bulk_reads_the_database_once_then_serves_from_the_cache(service: FlagService) -> None:
    create("a")
    first = call("POST", "/ofrep/v1/evaluate/flags", body={"context": {}})
    second = call("POST", "/ofrep/v1/evaluate/flags", body={"context": {}})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")


DEEP_CONTEXT = '{"context": {"targetingKey": "u", "a": ' + "[" * 900 + "]" * 900 + "}}"
HOSTILE_BODIES = {
    "lone surrogate targetingKey": '{"context": {"targetingKey": "\\ud800"}}',
    "lone surrogate attribute": '{"context": {"targetingKey": "u", "country": "DE\\udfff"}}',
    "lone surrogate attribute name": '{"context": {"targetingKey": "u", "\\udbff": 1}}',
    "number overflowing to infinity": '{"context": {"targetingKey": "u", "age": 1e400}}',
    "repeated context": '{"context": {"targetingKey": "a"}, "context": {"targetingKey": "b"}}',
    "repeated attribute": '{"context": {"targetingKey": "a", "targetingKey": "b"}}',
    "nesting 900 deep": DEEP_CONTEXT,
    "nesting 65 deep": '{"context": {"a": ' + "[" * 63 + "]" * 63 + "}}",
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
@pytest.mark.parametrize("path", ["/ofrep/v1/evaluate/flags/present", "/ofrep/v1/evaluate/flags"])
def test_hostile_bodies_are_parse_errors_on_single_and_bulk(path: str, body: str) -> None:
    create("present", **SPLIT)
    answer = call("POST", path, body=body)

    assert (answer.status, answer.json["errorCode"]) == (400, "PARSE_ERROR"), answer.body
    assert answer.json["errorDetails"] and set(answer.json) <= {"key", "errorCode", "errorDetails"}


def test_a_context_nesting_64_deep_is_evaluated() -> None:
    create("present", **SPLIT)
    answer = call(
        "POST", "/ofrep/v1/evaluate/flags", body='{"context": {"targetingKey": "u", "a": ' + "[" * 62 + "]" * 62 + "}}"
    )

    assert answer.status == 200 and answer.json["flags"][0]["key"] == "present"
