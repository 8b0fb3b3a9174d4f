"""Evaluation of one flag for one context, exactly as CONTRACT.md section 3 says. Pure: no I/O.

Typing rules of conditions (a condition that does not hold never errors):

- An attribute is a flat context key (`targetingKey` is one). A missing attribute, or a value of the
  wrong type, makes the condition not hold, whatever the operator: `neq` and `not_in` included.
- Kinds are string, number (integers and floats, compared as numbers: ``1 == 1.0``) and boolean.
  There is no coercion: ``"1"`` never equals ``1``, and a boolean is not a number (``True != 1``).
  `eq` and `neq` need the attribute to have the value's kind; for those attributes exactly one holds.
- `in` and `not_in` need the attribute to have the kind of at least one listed value and compare
  it only with values of its kind; for those attributes exactly one holds. With an empty `values`
  no kind is right, so neither holds.
- `contains`, `starts_with` and `ends_with` are substring tests on string attributes only; a list
  attribute is the wrong type (`contains` never tests list membership: that is what `in` is for).
- `gt`, `gte`, `lt` and `lte` compare numbers only.
- `semver_eq`, `semver_gt` and `semver_lt` read string attributes with
  :func:`~flagservice.flags.semver.parse_semver`; a non-string or a non-version does not hold.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from flagservice.errors import TargetingKeyMissingError
from flagservice.flags.bucketing import bucket, pick_variant
from flagservice.flags.model import Condition, FlagDefinition, Operator, RolloutEntry
from flagservice.flags.semver import parse_semver

DISABLED: Final = "DISABLED"
TARGETING_MATCH: Final = "TARGETING_MATCH"
SPLIT: Final = "SPLIT"
DEFAULT: Final = "DEFAULT"
STATIC: Final = "STATIC"

TARGETING_KEY: Final = "targetingKey"


@dataclass(frozen=True)
class Evaluation:
    """The answer for one flag and one context.

    Attributes
    ----------
    value : Any
        The chosen variant's value, as stored in the definition (shared with it: do not mutate).
    variant : str
        The chosen variant's name.
    reason : str
        One of "DISABLED", "TARGETING_MATCH", "SPLIT", "DEFAULT", "STATIC".
    """

    value: Any
    variant: str
    reason: str


def targeting_key_missing(key: str) -> TargetingKeyMissingError:
    """The error of a split that was needed while the context has no non-empty string `targetingKey`."""
    return TargetingKeyMissingError(
        f"flag {key!r} splits by percentage and needs a non-empty string targetingKey", key=key
    )


def evaluate_flag(flag: FlagDefinition, context: Mapping[str, Any]) -> Evaluation:
    """Evaluate `flag` for `context`, as CONTRACT.md section 3 orders it.

    A disabled flag gives `offVariant` (DISABLED). Otherwise the first rule whose conditions all hold
    (no conditions always holds) gives its variant (TARGETING_MATCH) or splits by its rollout (SPLIT);
    else the top-level rollout splits (SPLIT); else `defaultVariant`: STATIC when the flag has no rules
    and no rollout, DEFAULT when it has some.

    Parameters
    ----------
    flag : FlagDefinition
        A valid definition (the model guarantees that every named variant exists).
    context : Mapping[str, Any]
        Flat attributes of the evaluation context, `targetingKey` among them.

    Returns
    -------
    Evaluation
        The value, variant and reason.

    Raises
    ------
    TargetingKeyMissingError
        If a split is reached and `targetingKey` is missing, not a string, or empty.
    """
    if not flag.enabled:
        return _answer(flag, flag.offVariant, DISABLED)
    for rule in flag.rules:
        if all(condition_holds(condition, context) for condition in rule.conditions):
            if rule.rollout is not None:
                return _split(flag, rule.rollout, context)
            assert rule.variant is not None  # the model gives a rule exactly one of variant and rollout
            return _answer(flag, rule.variant, TARGETING_MATCH)
    if flag.rollout:
        return _split(flag, flag.rollout, context)
    return _answer(flag, flag.defaultVariant, DEFAULT if flag.rules or flag.rollout else STATIC)


def _answer(flag: FlagDefinition, variant: str, reason: str) -> Evaluation:
    return Evaluation(value=flag.variants[variant], variant=variant, reason=reason)


def _split(flag: FlagDefinition, rollout: Sequence[RolloutEntry], context: Mapping[str, Any]) -> Evaluation:
    targeting_key = context.get(TARGETING_KEY)
    if not isinstance(targeting_key, str) or not targeting_key:
        raise targeting_key_missing(flag.key)
    return _answer(flag, pick_variant(rollout, bucket(flag.key, targeting_key)), SPLIT)


def condition_holds(condition: Condition, context: Mapping[str, Any]) -> bool:
    """Whether one condition holds for `context`; never raises for any attribute value.

    Parameters
    ----------
    condition : Condition
        A valid condition (the model checks that its operand fits its operator).
    context : Mapping[str, Any]
        Flat attributes of the evaluation context.

    Returns
    -------
    bool
        False whenever the attribute is missing or of the wrong type (module docstring).
    """
    if condition.attribute not in context:
        return False
    return _OPERATORS[condition.operator](context[condition.attribute], condition)


def _kind(value: object) -> str | None:
    # bool before int: bool is a subclass of int, and a boolean is not a number here.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _same_kind(attribute: object, operand: object) -> bool:
    kind = _kind(attribute)
    return kind is not None and kind == _kind(operand)


def _eq(attribute: object, condition: Condition) -> bool:
    return _same_kind(attribute, condition.value) and attribute == condition.value


def _neq(attribute: object, condition: Condition) -> bool:
    return _same_kind(attribute, condition.value) and attribute != condition.value


def _listed(attribute: object, kind: str, values: list[Any]) -> bool:
    # Up to 1,000 values: let list.__contains__ (C speed) do the work. A string equals only strings,
    # and True and False are singletons; only a number needs a check that the match is no boolean.
    if kind == "string":
        return attribute in values
    if kind == "boolean":
        return any(v is attribute for v in values)
    return any(v == attribute and not isinstance(v, bool) for v in values)


def _in(attribute: object, condition: Condition) -> bool:
    kind = _kind(attribute)
    return kind is not None and _listed(attribute, kind, condition.values or [])


def _not_in(attribute: object, condition: Condition) -> bool:
    kind, values = _kind(attribute), condition.values or []
    if kind is None or not any(_kind(v) == kind for v in values):
        return False
    return not _listed(attribute, kind, values)


def _text_test(test: Callable[[str, str], bool]) -> Callable[[object, Condition], bool]:
    def holds(attribute: object, condition: Condition) -> bool:
        return isinstance(attribute, str) and isinstance(condition.value, str) and test(attribute, condition.value)

    return holds


def _number_test(compare: Callable[[Any, Any], bool]) -> Callable[[object, Condition], bool]:
    def holds(attribute: object, condition: Condition) -> bool:
        numbers = _kind(attribute) == "number" and _kind(condition.value) == "number"
        return numbers and compare(attribute, condition.value)

    return holds


def _semver_test(compare: Callable[[Any, Any], bool]) -> Callable[[object, Condition], bool]:
    def holds(attribute: object, condition: Condition) -> bool:
        version, wanted = parse_semver(attribute), parse_semver(condition.value)
        return version is not None and wanted is not None and compare(version, wanted)

    return holds


_OPERATORS: Final[Mapping[Operator, Callable[[object, Condition], bool]]] = {
    Operator.EQ: _eq,
    Operator.NEQ: _neq,
    Operator.IN: _in,
    Operator.NOT_IN: _not_in,
    Operator.CONTAINS: _text_test(lambda text, part: part in text),
    Operator.STARTS_WITH: _text_test(str.startswith),
    Operator.ENDS_WITH: _text_test(str.endswith),
    Operator.GT: _number_test(operator.gt),
    Operator.GTE: _number_test(operator.ge),
    Operator.LT: _number_test(operator.lt),
    Operator.LTE: _number_test(operator.le),
    Operator.SEMVER_EQ: _semver_test(operator.eq),
    Operator.SEMVER_GT: _semver_test(operator.gt),
    Operator.SEMVER_LT: _semver_test(operator.lt),
}
