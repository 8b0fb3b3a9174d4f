"""The flag definition of CONTRACT.md section 3: defaults, key rule, types, rules, rollouts, limits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from flagservice.flags.model import FlagDefinition, is_valid_key


def valid(**fields: Any) -> FlagDefinition:
    return FlagDefinition.model_validate({"key": "k", "enabled": True, **fields})


def invalid(**fields: Any) -> None:
    with pytest.raises(ValidationError):
        FlagDefinition.model_validate({"key": "k", "enabled": True, **fields})


def test_only_key_and_enabled_are_required_and_defaults_make_a_boolean_flag() -> None:
    data = valid().to_dict()
    assert data["variants"] == {"on": True, "off": False}
    assert (data["defaultVariant"], data["offVariant"], data["rules"], data["rollout"]) == ("on", "off", [], [])


@pytest.mark.parametrize("key", ["a", "A.b_c-1", "9lives", "x" * 128])
def test_valid_keys(key: str) -> None:
    assert is_valid_key(key)


@pytest.mark.parametrize("key", ["", "-a", ".a", "_a", "a b", "a/b", "x" * 129, "é", "a\n", 7, None])
def test_invalid_keys(key: Any) -> None:
    assert not is_valid_key(key)


@pytest.mark.parametrize("missing", ["key", "enabled"])
def test_required_fields(missing: str) -> None:
    data = {"key": "k", "enabled": True}
    del data[missing]
    with pytest.raises(ValidationError):
        FlagDefinition.model_validate(data)


def test_enabled_must_be_a_real_boolean() -> None:
    invalid(enabled="true")
    invalid(enabled=1)


def test_unknown_fields_are_refused() -> None:
    invalid(colour="red")
    invalid(rules=[{"variant": "on", "extra": 1}])


def test_own_variants_need_default_and_off_variant_names() -> None:
    invalid(variants={"a": "x", "b": "y"})
    invalid(variants={"a": "x", "b": "y"}, defaultVariant="a", offVariant="c")
    assert valid(variants={"a": "x", "b": "y"}, defaultVariant="a", offVariant="b").variant_type == "string"


@pytest.mark.parametrize(
    ("values", "kind"),
    [([1, 2], "integer"), ([1.5, 2.0], "float"), ([{"a": 1}, [1]], "object"), ([True, False], "boolean")],
)
def test_variant_types(values: list[Any], kind: str) -> None:
    flag = valid(variants={"a": values[0], "b": values[1]}, defaultVariant="a", offVariant="b")
    assert flag.variant_type == kind


@pytest.mark.parametrize("values", [[1, 1.5], [True, 1], ["1", 1], [None, None], [{"a": 1}, "x"]])
def test_mixed_or_null_variant_types_are_refused(values: list[Any]) -> None:
    invalid(variants={"a": values[0], "b": values[1]}, defaultVariant="a", offVariant="b")


def test_rules_and_rollouts_must_name_existing_variants() -> None:
    invalid(rules=[{"variant": "nope"}])
    invalid(rollout=[{"variant": "on", "weight": 50}, {"variant": "nope", "weight": 50}])
    invalid(rules=[{"rollout": [{"variant": "nope", "weight": 100}]}])


def test_rollout_weights_are_whole_numbers_summing_to_100() -> None:
    assert valid(rollout=[{"variant": "on", "weight": 0}, {"variant": "off", "weight": 100}]).rollout
    invalid(rollout=[{"variant": "on", "weight": 30}, {"variant": "off", "weight": 60}])
    invalid(rollout=[{"variant": "on", "weight": 50.0}, {"variant": "off", "weight": 50}])
    invalid(rollout=[{"variant": "on", "weight": -10}, {"variant": "off", "weight": 110}])


def test_a_rule_gives_exactly_one_of_variant_and_rollout() -> None:
    invalid(rules=[{"conditions": []}])
    invalid(rules=[{"variant": "on", "rollout": [{"variant": "on", "weight": 100}]}])


@pytest.mark.parametrize(
    "condition",
    [
        {"attribute": "a", "operator": "in", "value": "x"},
        {"attribute": "a", "operator": "eq", "values": ["x"]},
        {"attribute": "a", "operator": "gt", "value": "5"},
        {"attribute": "a", "operator": "gt", "value": True},
        {"attribute": "a", "operator": "contains", "value": 5},
        {"attribute": "a", "operator": "semver_gt", "value": "not.a.version"},
        {"attribute": "a", "operator": "regex", "value": "x"},
        {"attribute": "a", "operator": "eq"},
        {"attribute": "a", "operator": "in", "values": [["nested"]]},
    ],
)
def test_conditions_must_fit_their_operator(condition: dict[str, Any]) -> None:
    invalid(rules=[{"conditions": [condition], "variant": "on"}])


def test_limits() -> None:
    condition = {"attribute": "a", "operator": "eq", "value": "x"}
    assert len(valid(rules=[{"variant": "on"}] * 200).rules) == 200
    invalid(rules=[{"variant": "on"}] * 201)
    invalid(rules=[{"conditions": [condition] * 51, "variant": "on"}])
    invalid(rules=[{"conditions": [{"attribute": "a", "operator": "in", "values": ["x"] * 1001}], "variant": "on"}])
    invalid(description="x" * 1000, variants={"on": "y" * 33_000, "off": "z"}, defaultVariant="on", offVariant="off")


def test_float_values_serialize_as_floats() -> None:
    flag = valid(variants={"a": 1.0, "b": 2.0}, defaultVariant="a", offVariant="b")
    assert '"a":1.0' in flag.to_json()


@pytest.mark.parametrize(
    "condition",
    [
        {"attribute": "country", "operator": "in", "values": ["DE"]},
        {"attribute": "age", "operator": "gt", "value": 18},
        {"attribute": "v", "operator": "semver_gt", "value": "1.2.0"},
    ],
)
def test_a_stored_definition_reads_back_unchanged(condition: dict[str, Any]) -> None:
    flag = valid(rules=[{"conditions": [condition], "variant": "on"}])
    assert flag.to_dict()["rules"][0]["conditions"][0] == condition
    assert FlagDefinition.model_validate(flag.to_dict()) == flag
