"""OpenFeature's JavaScript server SDK with @openfeature/ofrep-provider, in Node, against the local server.

The packages are installed with `npm ci` from the committed tests/ofrep/js/package-lock.json; without node or
npm these tests fail (they never skip). One Node process runs every evaluation below through
tests/ofrep/js/evaluate.mjs and prints the OpenFeature details as JSON; the assertions are here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.ofrep import flags
from tests.ofrep.conftest import LocalServer, required_tool

pytestmark = [pytest.mark.real, pytest.mark.timeout(300)]
USER = {"targetingKey": "user-42", "country": "FR", "plan": "pro"}
STABLE_USERS = [f"user-{n}" for n in range(12)]


def evaluation(id_: str, kind: str, key: str, default: Any, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": id_, "kind": kind, "key": key, "default": default, "context": USER if context is None else context}


EVALUATIONS = [
    evaluation("boolean", "boolean", flags.BOOLEAN, False),
    evaluation("string-default", "string", flags.STRING, "fallback"),
    evaluation("string-match", "string", flags.STRING, "fallback", {"targetingKey": "user-7", "country": "DE"}),
    evaluation("integer", "number", flags.INTEGER, 0),
    evaluation("float", "number", flags.FLOAT, 0.25),
    evaluation("object", "object", flags.OBJECT, {}),
    evaluation("disabled", "string", flags.DISABLED, "fallback"),
    evaluation("not-found", "string", "no-such-flag", "fallback"),
    evaluation("not-found-slash", "string", "team/checkout", "fallback"),
    evaluation("mismatch-string-as-boolean", "boolean", flags.STRING, False),
    evaluation("mismatch-integer-as-string", "string", flags.INTEGER, "x"),
    evaluation("mismatch-object-as-number", "number", flags.OBJECT, 7),
    evaluation("split-no-targeting-key", "string", flags.SPLIT, "fallback", {"country": "DE"}),
    *[
        evaluation(
            f"split-{case['flagKey']}-{case['targetingKey']}",
            "string",
            case["flagKey"],
            "fallback",
            {"targetingKey": case["targetingKey"]},
        )
        for case in flags.split_cases()
    ],  # fmt: skip
    *[
        evaluation(f"stable-{round_}-{user}", "string", flags.SPLIT, "fallback", {"targetingKey": user})
        for round_ in ("first", "again")
        for user in STABLE_USERS
    ],
]


def run_node(
    node_package: Path, server: LocalServer, evaluations: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> Any:
    request = {"baseUrl": server.url, "headers": headers or {}, "evaluations": evaluations}
    done = subprocess.run(
        [required_tool("node"), "evaluate.mjs"], cwd=node_package, input=json.dumps(request),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, f"node failed:\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def results(node_package: Path, ofrep_server: LocalServer) -> dict[str, dict[str, Any]]:
    answers = run_node(node_package, ofrep_server, EVALUATIONS)
    assert [answer["id"] for answer in answers] == [item["id"] for item in EVALUATIONS]
    return {answer["id"]: answer for answer in answers}


def outcome(answer: dict[str, Any]) -> tuple[Any, ...]:
    return answer["value"], answer["variant"], answer["reason"], answer["errorCode"]


def test_installed_packages_are_the_pinned_ones(node_package: Path) -> None:
    lock = json.loads((node_package / "package-lock.json").read_text())["packages"]
    manifest = json.loads((node_package / "package.json").read_text())["dependencies"]

    for name, version in manifest.items():
        installed = json.loads((node_package / "node_modules" / name / "package.json").read_text())["version"]
        assert installed == version == lock[f"node_modules/{name}"]["version"]


def test_boolean_flag(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["boolean"]) == (True, "on", "STATIC", None)
    assert results["boolean"]["flagMetadata"] == {"version": 1}


def test_string_flag_without_a_matching_rule_gives_the_default_variant(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["string-default"]) == ("Welcome", "english", "DEFAULT", None)


def test_targeting_match(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["string-match"]) == ("Willkommen", "german", "TARGETING_MATCH", None)


def test_integer_and_float_flags_are_numbers(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["integer"]) == (50, "large", "STATIC", None)
    assert outcome(results["float"]) == (2.0, "full", "STATIC", None)


def test_object_flag(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["object"]) == (
        {"background": "#101010", "fonts": ["Inter"], "compact": True}, "dark", "STATIC", None
    )  # fmt: skip


@pytest.mark.parametrize("case", flags.split_cases(), ids=lambda case: f"{case['flagKey']}-{case['targetingKey']}")
def test_split_puts_each_user_where_flagd_does(results: dict[str, dict[str, Any]], case: dict[str, Any]) -> None:
    answer = results[f"split-{case['flagKey']}-{case['targetingKey']}"]

    assert outcome(answer) == (case["expectedValue"], case["expectedVariant"], "SPLIT", None)


def test_split_is_stable_per_user_and_agrees_with_an_independent_computation(
    results: dict[str, dict[str, Any]],
) -> None:
    first = {user: results[f"stable-first-{user}"]["variant"] for user in STABLE_USERS}
    again = {user: results[f"stable-again-{user}"]["variant"] for user in STABLE_USERS}

    assert first == again
    assert first == {user: flags.reference_variant(flags.SPLIT, user, flags.split_rollout()) for user in STABLE_USERS}


def test_split_without_a_targeting_key_gives_the_default(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["split-no-targeting-key"]) == ("fallback", None, "ERROR", "TARGETING_KEY_MISSING")


def test_flag_not_found_gives_the_default_value(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["not-found"]) == ("fallback", None, "ERROR", "FLAG_NOT_FOUND")
    assert results["not-found"]["errorMessage"]


def test_a_key_with_a_slash_is_not_found_too(results: dict[str, dict[str, Any]]) -> None:
    # The provider puts the key in the URL as it is: the server must still answer with the OFREP body.
    assert outcome(results["not-found-slash"]) == ("fallback", None, "ERROR", "FLAG_NOT_FOUND")


@pytest.mark.parametrize(
    ("id_", "default"),
    [("mismatch-string-as-boolean", False), ("mismatch-integer-as-string", "x"), ("mismatch-object-as-number", 7)],
)
def test_type_mismatch_gives_the_default_value(results: dict[str, dict[str, Any]], id_: str, default: Any) -> None:
    assert outcome(results[id_]) == (default, None, "ERROR", "TYPE_MISMATCH")


def test_disabled_flag_gives_its_off_variant(results: dict[str, dict[str, Any]]) -> None:
    assert outcome(results["disabled"]) == ("v1", "old", "DISABLED", None)


def test_an_api_key_header_as_deployed_is_accepted_locally(node_package: Path, ofrep_server: LocalServer) -> None:
    # Deployed, API Gateway requires X-API-Key; the local server has no gateway and ignores it.
    answers = run_node(
        node_package,
        ofrep_server, [evaluation("keyed", "number", flags.INTEGER, 0)], headers={"X-API-Key": "local-not-checked"}
    )  # fmt: skip

    assert outcome(answers[0]) == (50, "large", "STATIC", None)
