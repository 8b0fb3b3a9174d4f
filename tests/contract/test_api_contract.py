"""CONTRACT.md section 2 through the Lambda handler, against the fake and the real repository."""

from __future__ import annotations

from typing import Any

import pytest

from flagservice.service import FlagService
from tests.apigw import BEARER, call

pytestmark = pytest.mark.usefixtures("service")


def create(key: str = "checkout", **fields: Any) -> Any:
    answer = call("POST", "/admin/flags", body={"key": key, "enabled": True, **fields}, headers=BEARER)
    assert answer.status in (200, 201), answer.body
    return answer


def test_create_returns_201_with_defaults_version_and_time() -> None:
    answer = create(description="d")
    body = answer.json
    assert answer.status == 201 and answer.headers["etag"] == '"1"'
    assert body["variants"] == {"on": True, "off": False} and body["version"] == 1
    assert body["updatedAt"].endswith("Z") and body["description"] == "d"


def test_replace_returns_200_and_ignores_version_and_updated_at() -> None:
    create()
    answer = call(
        "POST",
        "/admin/flags",
        body={"key": "checkout", "enabled": False, "version": 99, "updatedAt": "x"},
        headers=BEARER,
    )
    assert answer.status == 200 and answer.json["version"] == 2 and answer.json["enabled"] is False


def test_get_flag_is_bypass_without_a_cache_with_etag_and_no_store() -> None:
    create()
    answer = call("GET", "/flags/checkout")
    assert answer.status == 200 and answer.json["key"] == "checkout"
    assert answer.headers["cache-control"] == "no-store" and answer.headers["etag"] == '"1"'
    assert answer.headers["x-cache"] in {"HIT", "MISS", "BYPASS"}


def test_kill_switch_patch() -> None:
    create(description="keep me")
    answer = call("PATCH", "/admin/flags/checkout", body={"enabled": False}, headers=BEARER)
    assert answer.status == 200 and answer.json["enabled"] is False and answer.json["description"] == "keep me"
    assert call("GET", "/flags/checkout").json["enabled"] is False


@pytest.mark.parametrize("value", ['"1"', "1", "*"])
def test_if_match_forms_are_accepted(value: str) -> None:
    create()
    answer = call("PATCH", "/admin/flags/checkout", body={"enabled": False}, headers={**BEARER, "If-Match": value})
    assert answer.status == 200


def test_if_match_mismatch_is_412_and_writes_nothing() -> None:
    create()
    answer = call("DELETE", "/admin/flags/checkout", headers={**BEARER, "If-Match": '"7"'})
    assert answer.status == 412 and answer.json["errorCode"] == "VERSION_CONFLICT"
    assert call("GET", "/flags/checkout").status == 200


def test_delete_then_history_survives_and_recreate_continues_versions() -> None:
    create()
    assert call("DELETE", "/admin/flags/checkout", headers=BEARER).status == 204
    assert call("GET", "/flags/checkout").status == 404
    history = call("GET", "/admin/flags/checkout/history", headers=BEARER)
    assert [e["action"] for e in history.json["history"]] == ["delete", "create"]
    assert create().json["version"] == 3


def test_revert_restores_an_old_definition_as_a_new_version() -> None:
    create(description="first")
    call("PATCH", "/admin/flags/checkout", body={"description": "second"}, headers=BEARER)
    answer = call("POST", "/admin/flags/checkout/revert", body={"version": 1}, headers=BEARER)
    assert answer.status == 200 and answer.json["description"] == "first" and answer.json["version"] == 3
    entries = call("GET", "/admin/flags/checkout/history", headers=BEARER).json["history"]
    assert entries[0]["action"] == "revert" and entries[0]["actor"] == "local-admin"
    assert entries[0]["before"]["description"] == "second" and entries[0]["after"]["description"] == "first"


def test_revert_to_a_deletion_or_unknown_version_is_invalid_flag() -> None:
    create()
    call("DELETE", "/admin/flags/checkout", headers=BEARER)
    create()
    for version in (2, 42):
        answer = call("POST", "/admin/flags/checkout/revert", body={"version": version}, headers=BEARER)
        assert (answer.status, answer.json["errorCode"]) == (400, "INVALID_FLAG")


def test_list_pages_with_next() -> None:
    for key in ["c", "a", "b"]:
        create(key)
    first = call("GET", "/flags", query={"limit": "2"})
    second = call("GET", "/flags", query={"limit": "2", "after": first.json["next"]})
    assert [f["key"] for f in first.json["flags"]] == ["a", "b"] and first.json["next"] == "b"
    assert [f["key"] for f in second.json["flags"]] == ["c"] and second.json["next"] is None


def test_history_pages_by_version() -> None:
    create()
    for description in ["x", "y"]:
        call("PATCH", "/admin/flags/checkout", body={"description": description}, headers=BEARER)
    first = call("GET", "/admin/flags/checkout/history", headers=BEARER, query={"limit": "2"})
    rest = call("GET", "/admin/flags/checkout/history", headers=BEARER, query={"after": str(first.json["next"])})
    assert [e["version"] for e in first.json["history"]] == [3, 2] and first.json["next"] == 2
    assert [e["version"] for e in rest.json["history"]] == [1] and rest.json["next"] is None


def test_health_reports_the_database() -> None:
    answer = call("GET", "/health")
    assert answer.status == 200 and answer.json["database"] == "ok"


def test_cache_stats_has_its_final_shape() -> None:
    body = call("GET", "/admin/cache/stats", headers=BEARER).json
    assert set(body) == {"hits", "misses", "hitRate", "since", "flags"}


def test_request_id_is_echoed() -> None:
    assert call("GET", "/flags", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"


def test_unknown_route_and_method() -> None:
    missing = call("GET", "/nowhere")
    wrong = call("PUT", "/flags/checkout")
    assert (missing.status, missing.json["errorCode"]) == (404, "NOT_FOUND")
    assert (wrong.status, wrong.json["errorCode"], wrong.headers["allow"]) == (405, "METHOD_NOT_ALLOWED", "GET")


OVERSIZED = {"key": "big", "enabled": True, "description": "x" * (33 * 1024)}
FLOAT_FLAG = '{"key": "k", "enabled": true, "variants": {"a": 1.5, "b": 0.5}, "defaultVariant": "a", "offVariant": "b"}'


def nested(depth: int) -> Any:
    """`depth` lists, each inside the next."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_flag(depth: int) -> str:
    """A valid object flag whose variant value makes the body nest `depth` deep (text: json.dumps would recurse)."""
    inner = depth - 3  # the body, `variants` and the value's own list
    return (
        '{"key": "k", "enabled": true, "variants": {"a": ' + "[" * (inner + 1) + "]" * (inner + 1)
        + ', "b": []}, "defaultVariant": "a", "offVariant": "b"}'
    )  # fmt: skip


def semver_flag(operand: str) -> dict[str, Any]:
    condition = {"attribute": "app", "operator": "semver_gt", "value": operand}
    return {"key": "k", "enabled": True, "rules": [{"conditions": [condition], "variant": "off"}]}


HOSTILE: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("POST", "/admin/flags", {"body": "{not json"}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": "[1, 2]"}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"raw": b'{"key": "\xff\xfe", "enabled": true}'}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": '{"key": "k", "enabled": NaN}'}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": ""}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": {"key": "bad key", "enabled": True}}, 400, "INVALID_KEY"),
    ("POST", "/admin/flags", {"body": {"key": 12, "enabled": True}}, 400, "INVALID_KEY"),
    ("POST", "/admin/flags", {"body": {"key": "k", "enabled": "yes"}}, 400, "INVALID_FLAG"),
    ("POST", "/admin/flags", {"body": {"key": "k"}}, 400, "INVALID_FLAG"),
    ("POST", "/admin/flags", {"body": {"enabled": True}}, 400, "INVALID_FLAG"),
    ("POST", "/admin/flags", {"body": {"key": "k", "enabled": True, "owner": "me"}}, 400, "INVALID_FLAG"),
    ("POST", "/admin/flags", {"body": OVERSIZED}, 413, "PAYLOAD_TOO_LARGE"),
    ("POST", "/admin/flags", {"body": {"key": "k", "enabled": True}, "auth": None}, 401, "UNAUTHORIZED"),
    ("POST", "/admin/flags", {"body": {"key": "k", "enabled": True}, "auth": "Bearer wrong"}, 403, "FORBIDDEN"),
    ("POST", "/admin/flags", {"body": {"key": "k", "enabled": True}, "auth": "Basic abc"}, 401, "UNAUTHORIZED"),
    ("PATCH", "/admin/flags/checkout", {"body": {"enabled": None}}, 400, "INVALID_FLAG"),
    ("PATCH", "/admin/flags/checkout", {"body": {"key": "other"}}, 400, "INVALID_FLAG"),
    ("PATCH", "/admin/flags/checkout", {"body": {"variants": {"x": 1}}}, 400, "INVALID_FLAG"),
    ("PATCH", "/admin/flags/checkout", {"body": {"unknown": 1}}, 400, "INVALID_FLAG"),
    ("PATCH", "/admin/flags/absent", {"body": {"enabled": False}}, 404, "FLAG_NOT_FOUND"),
    ("PATCH", "/admin/flags/-bad", {"body": {"enabled": False}}, 400, "INVALID_KEY"),
    ("PATCH", "/admin/flags/checkout", {"body": {"enabled": False}, "if_match": '"9"'}, 412, "VERSION_CONFLICT"),
    ("PATCH", "/admin/flags/checkout", {"body": {"enabled": False}, "if_match": "W/x"}, 412, "VERSION_CONFLICT"),
    ("PATCH", "/admin/flags/checkout", {"body": {"enabled": False}, "if_match": 'W/"1"'}, 412, "VERSION_CONFLICT"),
    ("PATCH", "/admin/flags/checkout", {"body": {"enabled": False}, "if_match": '"7", W/"1"'}, 412, "VERSION_CONFLICT"),
    ("PATCH", "/admin/flags/absent", {"body": {"enabled": False}, "if_match": 'W/"1"'}, 404, "FLAG_NOT_FOUND"),
    ("DELETE", "/admin/flags/absent", {"if_match": '"1"'}, 404, "FLAG_NOT_FOUND"),
    ("POST", "/admin/flags/absent/revert", {"body": {"version": 1}, "if_match": "junk"}, 404, "FLAG_NOT_FOUND"),
    ("DELETE", "/admin/flags/absent", {"if_match": "*"}, 404, "FLAG_NOT_FOUND"),
    ("POST", "/admin/flags/checkout/revert", {"body": {"version": "1"}}, 400, "INVALID_FLAG"),
    ("POST", "/admin/flags/checkout/revert", {"body": {"version": 1, "x": 1}}, 400, "INVALID_FLAG"),
    ("POST", "/admin/flags/absent/revert", {"body": {"version": 1}}, 404, "FLAG_NOT_FOUND"),
    ("GET", "/admin/flags/never/history", {}, 404, "FLAG_NOT_FOUND"),
    ("GET", "/admin/cache/stats", {"auth": None}, 401, "UNAUTHORIZED"),
    ("GET", "/flags/bad%key", {}, 400, "INVALID_KEY"),
    ("GET", "/flags/" + "x" * 129, {}, 400, "INVALID_KEY"),
    ("GET", "/flags/absent", {}, 404, "FLAG_NOT_FOUND"),
    ("GET", "/flags", {"query": {"limit": "0"}}, 400, "PARSE_ERROR"),
    ("GET", "/flags", {"query": {"limit": "1001"}}, 400, "PARSE_ERROR"),
    ("GET", "/flags", {"query": {"limit": "ten"}}, 400, "PARSE_ERROR"),
    ("GET", "/flags", {"query": {"after": "-x"}}, 400, "INVALID_KEY"),
    ("GET", "/admin/flags/checkout/history", {"query": {"after": "x"}}, 400, "PARSE_ERROR"),
    ("DELETE", "/flags/checkout", {}, 405, "METHOD_NOT_ALLOWED"),
    ("PUT", "/admin/flags", {}, 405, "METHOD_NOT_ALLOWED"),
    ("GET", "/admin/flags", {"auth": None}, 401, "UNAUTHORIZED"),
    ("GET", "/admin/flags", {"query": {"limit": "0"}}, 400, "PARSE_ERROR"),
    ("GET", "/flags/a/b/c", {}, 404, "NOT_FOUND"),
    # Issue 13: bodies that once were stored, or answered 500 (CONTRACT.md section 2, PARSE_ERROR row).
    ("POST", "/admin/flags", {"body": FLOAT_FLAG.replace("1.5", "1e400")}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": FLOAT_FLAG.replace("1.5", "-1e400")}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": FLOAT_FLAG.replace("1.5", "1" + "0" * 400 + ".0")}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": '{"key": "k", "enabled": true, "description": "\\ud800"}'}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": '{"key": "k", "enabled": true, "\\udc00x": 1}'}, 400, "PARSE_ERROR"),
    (
        "POST",
        "/admin/flags",
        {"raw": b'{"key": "k", "enabled": true, "description": "\xed\xa0\x80"}'},
        400,
        "PARSE_ERROR",
    ),
    ("POST", "/admin/flags", {"body": '{"key": "k", "enabled": true, "enabled": false}'}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": '{"key": "k", "key": "checkout", "enabled": false}'}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": nested_flag(65)}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": nested_flag(5000)}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags", {"body": semver_flag("1.0.0-" + "a" * 251)}, 400, "INVALID_FLAG"),
    ("POST", "/admin/flags", {"body": {"key": "k", "enabled": True}, "auth": "Bearer \ud800"}, 403, "FORBIDDEN"),
    ("PATCH", "/admin/flags/checkout", {"body": '{"enabled": false, "enabled": true}'}, 400, "PARSE_ERROR"),
    ("PATCH", "/admin/flags/checkout", {"body": '{"description": 1e400}'}, 400, "PARSE_ERROR"),
    ("PATCH", "/admin/flags/checkout", {"body": '{"description": "\\udfff"}'}, 400, "PARSE_ERROR"),
    ("PATCH", "/admin/flags/checkout", {"body": {"description": "x", "rules": nested(70)}}, 400, "PARSE_ERROR"),
    ("POST", "/admin/flags/checkout/revert", {"body": '{"version": 1, "version": 1}'}, 400, "PARSE_ERROR"),
    ("DELETE", "/admin/flags/checkout", {"if_match": "\x00\ud800 garbage"}, 412, "VERSION_CONFLICT"),
]


def test_admin_list_is_the_flag_list_under_admin_auth(service: FlagService) -> None:
    create()
    public, admin = call("GET", "/flags"), call("GET", "/admin/flags", headers=BEARER)
    assert admin.status == 200 and admin.json == public.json and admin.json["flags"][0]["key"] == "checkout"


@pytest.mark.parametrize("if_match", ['"1"', "1", '"5", "1"', '"5",1', "*"])
def test_if_match_accepts_strong_validators_a_list_and_star(service: FlagService, if_match: str) -> None:
    create()
    answer = call("PATCH", "/admin/flags/checkout", headers={**BEARER, "If-Match": if_match}, body={"enabled": False})
    assert (answer.status, answer.json["version"], answer.json["enabled"]) == (200, 2, False)


@pytest.mark.parametrize(("method", "path", "spec", "status", "code"), HOSTILE)
def test_hostile_input_gets_its_error_and_writes_nothing(
    service: FlagService, method: str, path: str, spec: dict[str, Any], status: int, code: str
) -> None:
    # Given a flag, and the source of truth's change counter
    create()
    before = service._repository.revision()  # noqa: SLF001 - the source of truth's own change counter
    # When the hostile request is sent, with the credentials and If-Match it names
    headers = {}
    auth = spec.get("auth", BEARER["Authorization"])
    if auth:
        headers["Authorization"] = auth
    if "if_match" in spec:
        headers["If-Match"] = spec["if_match"]
    answer = call(method, path, headers=headers, body=spec.get("body"), raw=spec.get("raw"), query=spec.get("query"))
    # Then it gets its error in the contract's shape, and nothing was written
    assert (answer.status, answer.json["errorCode"]) == (status, code), answer.body
    assert set(answer.json) <= {"errorCode", "errorDetails", "key"} and answer.json["errorDetails"]
    assert "Traceback" not in answer.body
    assert service._repository.revision() == before  # noqa: SLF001
    assert call("GET", "/flags/checkout").json["version"] == 1


@pytest.mark.parametrize(
    "body",
    [
        nested_flag(64),
        semver_flag("1.0.0-" + "a" * 250),
        FLOAT_FLAG.replace("1.5", "1e308"),
        '{"key": "k", "enabled": true, "description": "\\ud83d\\ude00"}',
    ],
    ids=["nesting-64", "semver-256", "float-1e308", "surrogate-pair"],
)
def test_inputs_at_the_limits_are_accepted(body: Any) -> None:
    answer = call("POST", "/admin/flags", body=body, headers=BEARER)

    assert answer.status == 201, answer.body
    assert call("GET", "/flags/k").json == answer.json
