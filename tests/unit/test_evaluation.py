"""Evaluation as CONTRACT.md section 3 says: order and reasons, every operator, typing rules, splits."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagservice.flags.bucketing import bucket, pick_variant
from flagservice.flags.evaluation import (
    DEFAULT,
    DISABLED,
    SPLIT,
    STATIC,
    TARGETING_MATCH,
    Evaluation,
    TargetingKeyMissingError,
    condition_holds,
    evaluate_flag,
)
from flagservice.flags.model import Condition, FlagDefinition, Operator, RolloutEntry

COLORS = {"red": "#f00", "green": "#0f0", "blue": "#00f"}


def make_flag(**fields: Any) -> FlagDefinition:
    """A string flag (red, green, blue) that is on, defaults to green and is off as red, plus `fields`."""
    base: dict[str, Any] = {"key": "color", "enabled": True, "variants": COLORS}
    base |= {"defaultVariant": "green", "offVariant": "red"}
    return FlagDefinition.model_validate(base | fields)


def cond(attribute: str, operator: str, operand: Any) -> dict[str, Any]:
    operand_field = "values" if operator in {"in", "not_in"} else "value"
    return {"attribute": attribute, "operator": operator, operand_field: operand}


def rule(variant: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {"conditions": list(conditions), "variant": variant}


def holds(operator: str, operand: Any, attribute: Any) -> bool:
    return condition_holds(Condition.model_validate(cond("attr", operator, operand)), {"attr": attribute})


def split(*weights: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"variant": variant, "weight": weight} for variant, weight in weights]


# ---------------------------------------------------------------------------------------------------------------
# Order and reasons.
# ---------------------------------------------------------------------------------------------------------------


def test_a_flag_with_no_rules_and_no_rollout_is_static() -> None:
    assert evaluate_flag(make_flag(), {}) == Evaluation(value="#0f0", variant="green", reason=STATIC)


def test_the_default_boolean_flag_is_static_on() -> None:
    flag = FlagDefinition.model_validate({"key": "plain", "enabled": True})

    assert evaluate_flag(flag, {"targetingKey": "u"}) == Evaluation(value=True, variant="on", reason=STATIC)


def test_a_disabled_flag_gives_its_off_variant_whatever_its_rules_and_rollout() -> None:
    flag = make_flag(enabled=False, rules=[rule("blue")], rollout=split(("blue", 100)))

    assert evaluate_flag(flag, {}) == Evaluation(value="#f00", variant="red", reason=DISABLED)


def test_a_matching_rule_is_a_targeting_match() -> None:
    flag = make_flag(rules=[rule("blue", cond("country", "eq", "DE"))])

    assert evaluate_flag(flag, {"country": "DE"}) == Evaluation(value="#00f", variant="blue", reason=TARGETING_MATCH)


def test_no_matching_rule_and_no_rollout_is_default() -> None:
    flag = make_flag(rules=[rule("blue", cond("country", "eq", "DE"))])

    assert evaluate_flag(flag, {"country": "FR"}) == Evaluation(value="#0f0", variant="green", reason=DEFAULT)


def test_a_matching_rule_with_a_rollout_is_a_split() -> None:
    flag = make_flag(rules=[{"conditions": [cond("country", "eq", "DE")], "rollout": split(("blue", 100))}])

    assert evaluate_flag(flag, {"country": "DE", "targetingKey": "u1"}) == Evaluation("#00f", "blue", SPLIT)


def test_the_top_level_rollout_is_a_split_when_no_rule_matches() -> None:
    flag = make_flag(rules=[rule("blue", cond("country", "eq", "DE"))], rollout=split(("red", 0), ("green", 100)))

    assert evaluate_flag(flag, {"country": "FR", "targetingKey": "u1"}) == Evaluation("#0f0", "green", SPLIT)


def test_the_top_level_rollout_alone_is_a_split() -> None:
    flag = make_flag(rollout=split(("blue", 100)))

    assert evaluate_flag(flag, {"targetingKey": "u1"}).reason == SPLIT


def test_the_first_matching_rule_wins() -> None:
    flag = make_flag(rules=[rule("red", cond("tier", "eq", "gold")), rule("blue"), rule("green")])

    assert evaluate_flag(flag, {"tier": "gold"}).variant == "red"
    assert evaluate_flag(flag, {"tier": "silver"}).variant == "blue"


def test_a_matching_rule_comes_before_the_top_level_rollout() -> None:
    flag = make_flag(rules=[rule("blue", cond("beta", "eq", True))], rollout=split(("red", 100)))

    assert evaluate_flag(flag, {"beta": True, "targetingKey": "u1"}) == Evaluation("#00f", "blue", TARGETING_MATCH)


def test_a_rule_without_conditions_always_holds() -> None:
    flag = make_flag(rules=[rule("blue")], rollout=split(("red", 100)))

    assert evaluate_flag(flag, {}) == Evaluation("#00f", "blue", TARGETING_MATCH)


def test_every_condition_of_a_rule_must_hold() -> None:
    flag = make_flag(rules=[rule("blue", cond("country", "eq", "DE"), cond("age", "gte", 18))])

    assert evaluate_flag(flag, {"country": "DE", "age": 18}).variant == "blue"
    assert evaluate_flag(flag, {"country": "DE", "age": 17}).reason == DEFAULT
    assert evaluate_flag(flag, {"country": "DE"}).reason == DEFAULT


def test_a_rule_rollout_uses_the_same_bucket_as_the_top_level_rollout() -> None:
    weights = split(("red", 20), ("green", 30), ("blue", 50))
    in_rule, top_level = make_flag(rules=[{"rollout": weights}]), make_flag(rollout=weights)

    for user in (f"user-{n}" for n in range(300)):
        context = {"targetingKey": user}
        assert evaluate_flag(in_rule, context).variant == evaluate_flag(top_level, context).variant


def test_a_split_picks_the_variant_of_the_users_bucket() -> None:
    weights = split(("red", 20), ("green", 30), ("blue", 50))
    flag = make_flag(rollout=weights)
    entries = [RolloutEntry.model_validate(entry) for entry in weights]

    for user in (f"user-{n}" for n in range(300)):
        expected = pick_variant(entries, bucket("color", user))
        assert evaluate_flag(flag, {"targetingKey": user}) == Evaluation(COLORS[expected], expected, SPLIT)


def test_the_evaluation_is_immutable() -> None:
    result = evaluate_flag(make_flag(), {})

    with pytest.raises(dataclasses.FrozenInstanceError):
        result.variant = "red"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------------------------
# Splits need a targetingKey.
# ---------------------------------------------------------------------------------------------------------------

MISSING_KEYS: list[dict[str, Any]] = [
    {},
    {"targetingKey": None},
    {"targetingKey": ""},
    {"targetingKey": 42},
    {"targetingKey": ["u1"]},
    {"user": "u1"},
]


@pytest.mark.parametrize("context", MISSING_KEYS)
def test_a_top_level_split_without_a_targeting_key_is_an_error(context: dict[str, Any]) -> None:
    with pytest.raises(TargetingKeyMissingError) as error:
        evaluate_flag(make_flag(rollout=split(("blue", 100))), context)

    assert error.value.key == "color"
    assert "targetingKey" in str(error.value)


@pytest.mark.parametrize("context", MISSING_KEYS)
def test_a_rule_split_without_a_targeting_key_is_an_error(context: dict[str, Any]) -> None:
    with pytest.raises(TargetingKeyMissingError):
        evaluate_flag(make_flag(rules=[{"rollout": split(("blue", 100))}]), context)


def test_no_targeting_key_is_needed_when_no_split_is_reached() -> None:
    flag = make_flag(rules=[rule("blue", cond("country", "eq", "DE"))], rollout=split(("red", 100)))

    assert evaluate_flag(flag, {"country": "DE"}).reason == TARGETING_MATCH
    assert evaluate_flag(make_flag(enabled=False, rollout=split(("red", 100))), {}).reason == DISABLED


# ---------------------------------------------------------------------------------------------------------------
# Variant values are returned as stored, for every type.
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variants", "expected_type"),
    [
        ({"on": True, "off": False}, bool),
        ({"on": "yes", "off": "no"}, str),
        ({"on": 2, "off": 1}, int),
        ({"on": 1.0, "off": 0.0}, float),
        ({"on": {"limit": 5, "tags": ["a"]}, "off": {}}, dict),
        ({"on": [1, 2], "off": []}, list),
    ],
)
def test_variant_values_are_returned_as_stored(variants: dict[str, Any], expected_type: type) -> None:
    flag = FlagDefinition.model_validate(
        {"key": "typed", "enabled": True, "variants": variants, "defaultVariant": "on", "offVariant": "off"}
    )

    result = evaluate_flag(flag, {})

    assert result.value == variants["on"]
    assert type(result.value) is expected_type


def test_a_float_flag_whose_value_is_whole_stays_a_float() -> None:
    flag = FlagDefinition.model_validate(
        {"key": "ratio", "enabled": False, "variants": {"a": 1.5, "b": 1.0}, "defaultVariant": "a", "offVariant": "b"}
    )

    result = evaluate_flag(flag, {})

    assert isinstance(result.value, float) and result.value == 1.0


# ---------------------------------------------------------------------------------------------------------------
# Every operator, with the typing rules (no coercion; booleans are not numbers).
# ---------------------------------------------------------------------------------------------------------------

OPERATOR_CASES = [
    # eq: same kind and equal; integers and floats are both numbers
    ("eq", "DE", "DE", True),
    ("eq", "DE", "de", False),
    ("eq", 1, 1, True),
    ("eq", 1, 1.0, True),
    ("eq", 1.5, 1.5, True),
    ("eq", 1, "1", False),
    ("eq", "1", 1, False),
    ("eq", True, True, True),
    ("eq", False, False, True),
    ("eq", True, 1, False),
    ("eq", 1, True, False),
    ("eq", False, 0, False),
    ("eq", 0, False, False),
    ("eq", "true", True, False),
    # neq: same kind and different; another kind does not hold
    ("neq", "DE", "FR", True),
    ("neq", "DE", "DE", False),
    ("neq", 1, 2, True),
    ("neq", 1, 1.0, False),
    ("neq", 1, "2", False),
    ("neq", True, False, True),
    ("neq", True, 1, False),
    ("neq", 0, False, False),
    # in: equal to a listed value of its kind
    ("in", ["DE", "FR"], "DE", True),
    ("in", ["DE", "FR"], "IT", False),
    ("in", [1, 2], 2.0, True),
    ("in", [1, 2], True, False),
    ("in", [True], 1, False),
    ("in", [0], False, False),
    ("in", ["1"], 1, False),
    ("in", [1, "a", True], True, True),
    ("in", [1, "a", True], "a", True),
    ("in", [], "x", False),
    # not_in: of the kind of some listed value, and equal to none of them
    ("not_in", ["DE", "FR"], "IT", True),
    ("not_in", ["DE", "FR"], "DE", False),
    ("not_in", ["DE", "FR"], 5, False),
    ("not_in", [1, 2], 3, True),
    ("not_in", [1, 2], 1.0, False),
    ("not_in", [1, 2], True, False),
    ("not_in", [0], False, False),
    ("not_in", [True], False, True),
    ("not_in", [1, "a"], "b", True),
    ("not_in", [], "x", False),
    # contains / starts_with / ends_with: case-sensitive substring tests on strings only
    ("contains", "@acme", "a@acme.com", True),
    ("contains", "@acme", "a@other.com", False),
    ("contains", "ACME", "a@acme.com", False),
    ("contains", "", "abc", True),
    ("contains", "2", 123, False),
    ("contains", "x", ["x", "y"], False),
    ("starts_with", "abc", "abcdef", True),
    ("starts_with", "abc", "abcxyz", True),
    ("starts_with", "abc", "xabc", False),
    ("starts_with", "1", 123, False),
    ("ends_with", "xyz", "uvwxyz", True),
    ("ends_with", "xyz", "xyzu", False),
    ("ends_with", "3", 123, False),
    # gt / gte / lt / lte: numbers only
    ("gt", 10, 11, True),
    ("gt", 10, 10, False),
    ("gt", 10, 10.5, True),
    ("gt", 10.5, 11, True),
    ("gt", 10, "11", False),
    ("gt", 0, True, False),
    ("gte", 10, 10, True),
    ("gte", 10, 10.0, True),
    ("gte", 10, 9.99, False),
    ("gte", 0, False, False),
    ("lt", 10, 9, True),
    ("lt", 10, 10, False),
    ("lt", 10, "9", False),
    ("lt", 2, True, False),
    ("lte", 10, 10, True),
    ("lte", 10, 10.01, False),
    ("lte", -1.5, -2, True),
    ("lte", 1, True, False),
    ("gt", 2**53, 2**53 + 1, True),
    # semver_*: string attributes read as versions; no coercion of numbers
    ("semver_eq", "1.0.0", "1.0.0", True),
    ("semver_eq", "1.0.0", "v1.0.0", True),
    ("semver_eq", "v1.0.0", "1.0.0", True),
    ("semver_eq", "1.0.0", "1", True),
    ("semver_eq", "1.0.0", "1.0", True),
    ("semver_eq", "1.0.0+build", "1.0.0+other", True),
    ("semver_eq", "1.0.0", "1.0.1", False),
    ("semver_eq", "1.0.0", "1.0.0-rc.1", False),
    ("semver_eq", "1.0.0", 1, False),
    ("semver_eq", "1.0.0", 1.0, False),
    ("semver_eq", "1.0.0", "not-a-version", False),
    ("semver_eq", "2.0.0", "2.0.0.0", False),
    ("semver_gt", "2.0.0", "2.1.0", True),
    ("semver_gt", "2.0.0", "2.0.0", False),
    ("semver_gt", "2.0.0", "1.9.0", False),
    ("semver_gt", "1.1", "1.2", True),
    ("semver_gt", "2.0.0-alpha", "2.0.0-beta", True),
    ("semver_gt", "1.0.0-rc.1", "1.0.0", True),
    ("semver_gt", "1.0.0-beta.2", "1.0.0-beta.11", True),
    ("semver_gt", "1.0.0", 2, False),
    ("semver_lt", "2.0.0", "1.9.0", True),
    ("semver_lt", "2.0.0", "2.0.0-alpha", True),
    ("semver_lt", "2.0.0", "2.0.0", False),
    ("semver_lt", "2.0.0", "2.0.0+build", False),
    ("semver_lt", "1.0.0-alpha.1", "1.0.0-alpha", True),
    ("semver_lt", "2.0.0", "x", False),
]


@pytest.mark.parametrize(("operator", "operand", "attribute", "expected"), OPERATOR_CASES)
def test_operator(operator: str, operand: Any, attribute: Any, expected: bool) -> None:
    assert holds(operator, operand, attribute) is expected


def test_every_operator_has_cases() -> None:
    assert {case[0] for case in OPERATOR_CASES} == {op.value for op in Operator}


ONE_OPERAND = {
    "eq": "x",
    "neq": "x",
    "in": ["x", 1, True],
    "not_in": ["x", 1, True],
    "contains": "x",
    "starts_with": "x",
    "ends_with": "x",
    "gt": 1,
    "gte": 1,
    "lt": 1,
    "lte": 1,
    "semver_eq": "1.0.0",
    "semver_gt": "1.0.0",
    "semver_lt": "1.0.0",
}


@pytest.mark.parametrize("operator", sorted(ONE_OPERAND))
def test_a_condition_on_a_missing_attribute_never_holds(operator: str) -> None:
    condition = Condition.model_validate(cond("attr", operator, ONE_OPERAND[operator]))

    assert condition_holds(condition, {}) is False
    assert condition_holds(condition, {"other": "y", "targetingKey": "attr"}) is False


@pytest.mark.parametrize("attribute", [None, {"x": 1}, [], ["x"], [1], {}])
@pytest.mark.parametrize("operator", sorted(ONE_OPERAND))
def test_a_condition_on_a_null_object_or_list_never_holds(operator: str, attribute: Any) -> None:
    assert holds(operator, ONE_OPERAND[operator], attribute) is False


def test_attributes_are_flat_context_keys() -> None:
    condition = Condition.model_validate(cond("user.name", "eq", "jack"))

    assert condition_holds(condition, {"user.name": "jack"}) is True
    assert condition_holds(condition, {"user": {"name": "jack"}}) is False


def test_the_targeting_key_is_an_attribute() -> None:
    flag = make_flag(rules=[rule("blue", cond("targetingKey", "in", ["u-1", "u-2"]))])

    assert evaluate_flag(flag, {"targetingKey": "u-2"}).reason == TARGETING_MATCH
    assert evaluate_flag(flag, {"targetingKey": "u-3"}).reason == DEFAULT


def test_a_wrong_type_through_evaluate_falls_to_the_default_and_never_errors() -> None:
    flag = make_flag(rules=[rule("blue", cond("age", "gt", 18)), rule("red", cond("version", "semver_gt", "1.0.0"))])

    assert evaluate_flag(flag, {"age": "30", "version": 2}) == Evaluation("#0f0", "green", DEFAULT)


# ---------------------------------------------------------------------------------------------------------------
# Properties: never raises; eq/neq and in/not_in are complements on attributes of the right kind.
# ---------------------------------------------------------------------------------------------------------------

scalars = st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
json_values = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
)


def _kind(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "string"


@given(st.sampled_from(sorted(ONE_OPERAND)), json_values)
def test_conditions_never_raise_for_any_json_attribute(operator: str, attribute: Any) -> None:
    assert holds(operator, ONE_OPERAND[operator], attribute) in (True, False)


@pytest.mark.parametrize("text", ["", "v", "1..2", "1.0.0\n", "9" * 5000, "1.0.0-" + "9" * 5000, "\x00", "\ud800"])
@pytest.mark.parametrize("operator", ["semver_eq", "semver_gt", "semver_lt"])
def test_semver_conditions_never_raise_for_odd_text(operator: str, text: str) -> None:
    assert holds(operator, "1.0.0-1", text) in (True, False)


@given(scalars, scalars)
def test_eq_and_neq_are_complements_on_the_same_kind_and_both_fail_otherwise(value: Any, attribute: Any) -> None:
    eq, neq = holds("eq", value, attribute), holds("neq", value, attribute)

    assert (eq != neq) if _kind(value) == _kind(attribute) else (not eq and not neq)


@given(st.lists(scalars, max_size=5), scalars)
def test_in_and_not_in_are_complements_on_a_listed_kind_and_both_fail_otherwise(
    values: list[Any], attribute: Any
) -> None:
    is_in, not_in = holds("in", values, attribute), holds("not_in", values, attribute)

    comparable = any(_kind(v) == _kind(attribute) for v in values)
    assert (is_in != not_in) if comparable else (not is_in and not not_in)
