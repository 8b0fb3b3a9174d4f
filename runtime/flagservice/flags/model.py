"""The flag definition of CONTRACT.md section 3 as pydantic models: defaults, key rule, limits."""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    model_serializer,
    model_validator,
)

from flagservice.flags.semver import MAX_SEMVER_LENGTH, parse_semver

KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_KEY_RE = re.compile(KEY_PATTERN)
MAX_RULES = 200
MAX_CONDITIONS = 50
MAX_VALUES = 1000
MAX_DEFINITION_BYTES = 32 * 1024

FlagKey = Annotated[StrictStr, Field(pattern=KEY_PATTERN)]
VariantName = Annotated[StrictStr, Field(min_length=1, max_length=128)]


def is_valid_key(key: object) -> bool:
    """The key rule: 1 to 128 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit."""
    return isinstance(key, str) and _KEY_RE.match(key) is not None and not key.endswith("\n")


def value_type(value: object) -> str | None:
    """The variant type of a JSON value; integers and floats are different types."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (dict, list)):
        return "object"
    return None


class Operator(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    SEMVER_EQ = "semver_eq"
    SEMVER_GT = "semver_gt"
    SEMVER_LT = "semver_lt"


LIST_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})
STRING_OPERATORS = frozenset({Operator.CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH})
NUMBER_OPERATORS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
SEMVER_OPERATORS = frozenset({Operator.SEMVER_EQ, Operator.SEMVER_GT, Operator.SEMVER_LT})


def _is_scalar(value: object) -> bool:
    return value_type(value) in {"boolean", "integer", "float", "string"}


def _is_number(value: object) -> bool:
    return value_type(value) in {"integer", "float"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """`{"attribute", "operator", "value"}`, or `"values"` (a list) for `in` and `not_in`."""

    attribute: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    operator: Operator
    value: Any = None
    values: Annotated[list[Any], Field(max_length=MAX_VALUES)] | None = None

    @model_serializer(mode="wrap")
    def _only_the_operand_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A condition has `value` or `values`, never both: the stored form omits the other.
        data: dict[str, Any] = handler(self)
        data.pop("values" if self.operator not in LIST_OPERATORS else "value", None)
        return data

    @model_validator(mode="after")
    def _operand_fits_operator(self) -> Condition:
        op = self.operator
        if op in LIST_OPERATORS:
            if self.values is None or "value" in self.model_fields_set:
                raise ValueError(f"operator {op.value} takes a 'values' list and no 'value'")
            if not all(_is_scalar(v) for v in self.values):
                raise ValueError(f"operator {op.value} takes strings, numbers or booleans")
            return self
        if self.values is not None or "value" not in self.model_fields_set:
            raise ValueError(f"operator {op.value} takes one 'value' and no 'values'")
        if op in NUMBER_OPERATORS and not _is_number(self.value):
            raise ValueError(f"operator {op.value} takes a number")
        if op in STRING_OPERATORS and not isinstance(self.value, str):
            raise ValueError(f"operator {op.value} takes a string")
        if op in SEMVER_OPERATORS and isinstance(self.value, str) and len(self.value) > MAX_SEMVER_LENGTH:
            raise ValueError(f"operator {op.value} takes a semantic version of at most {MAX_SEMVER_LENGTH} characters")
        if op in SEMVER_OPERATORS and parse_semver(self.value) is None:
            raise ValueError(f"operator {op.value} takes a semantic version string")
        if op in {Operator.EQ, Operator.NEQ} and not _is_scalar(self.value):
            raise ValueError(f"operator {op.value} takes a string, number or boolean")
        return self


class RolloutEntry(_Strict):
    variant: VariantName
    weight: Annotated[StrictInt, Field(ge=0, le=100)]


Rollout = Annotated[list[RolloutEntry], Field(min_length=1, max_length=100)]


def _check_rollout(rollout: list[RolloutEntry]) -> None:
    if sum(entry.weight for entry in rollout) != 100:
        raise ValueError("rollout weights must sum to 100")


class Rule(_Strict):
    """Conditions that must all hold; then a `variant`, or a split by the rule's own `rollout`."""

    name: Annotated[StrictStr, Field(max_length=256)] | None = None
    conditions: Annotated[list[Condition], Field(max_length=MAX_CONDITIONS)] = []
    variant: VariantName | None = None
    rollout: Rollout | None = None

    @model_validator(mode="after")
    def _variant_or_rollout(self) -> Rule:
        if (self.variant is None) == (self.rollout is None):
            raise ValueError("a rule gives exactly one of 'variant' and 'rollout'")
        if self.rollout is not None:
            _check_rollout(self.rollout)
        return self


DEFAULT_VARIANTS: dict[str, Any] = {"on": True, "off": False}
TRUSTED = {"trusted": True}
"""Validation context for definitions read back from our own stores: the size limit was checked on write."""


class FlagDefinition(_Strict):
    """A flag as stored and served (without `version` and `updatedAt`)."""

    key: FlagKey
    description: Annotated[StrictStr, Field(max_length=1024)] = ""
    enabled: StrictBool
    variants: Annotated[dict[VariantName, Any], Field(min_length=1, max_length=1000)] = Field(
        default_factory=lambda: dict(DEFAULT_VARIANTS)
    )
    defaultVariant: VariantName = "on"
    offVariant: VariantName = "off"
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)] = []
    rollout: Annotated[list[RolloutEntry], Field(max_length=100)] = []

    @model_validator(mode="before")
    @classmethod
    def _nulls_mean_default(cls, data: Any) -> Any:
        # An optional field sent as null takes its default; required fields stay null and fail.
        if isinstance(data, dict):
            optional = {"description", "variants", "defaultVariant", "offVariant", "rules", "rollout"}
            return {k: v for k, v in data.items() if not (v is None and k in optional)}
        return data

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> FlagDefinition:
        if "variants" in self.model_fields_set and not {"defaultVariant", "offVariant"} <= self.model_fields_set:
            raise ValueError("a definition with its own variants must give defaultVariant and offVariant")
        types = {value_type(v) for v in self.variants.values()}
        if None in types or len(types) != 1:
            raise ValueError("all variant values must share one type: boolean, string, integer, float or object")
        named = [self.defaultVariant, self.offVariant]
        named += [r.variant for r in self.rules if r.variant is not None]
        named += [e.variant for r in self.rules for e in (r.rollout or [])]
        named += [e.variant for e in self.rollout]
        missing = sorted({name for name in named if name not in self.variants})
        if missing:
            raise ValueError(f"unknown variant(s): {', '.join(missing)}")
        if self.rollout:
            _check_rollout(self.rollout)
        trusted = isinstance(info.context, dict) and info.context.get("trusted")
        if not trusted and len(self.to_json().encode()) > MAX_DEFINITION_BYTES:
            raise ValueError("a definition is at most 32 KiB")
        return self

    @property
    def variant_type(self) -> str:
        return value_type(next(iter(self.variants.values()))) or "object"

    def to_dict(self) -> dict[str, Any]:
        """The definition as JSON-ready data, defaults filled in."""
        return self.model_dump(mode="python", exclude_none=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)


class StoredFlag(BaseModel):
    """A definition with the version and time of the write that stored it."""

    model_config = ConfigDict(frozen=True)

    definition: FlagDefinition
    version: int
    updated_at: datetime

    @property
    def key(self) -> str:
        return self.definition.key

    def to_api(self) -> dict[str, Any]:
        """The read answer: the definition plus `version` and `updatedAt` (RFC 3339, UTC)."""
        body = self.definition.to_dict()
        body["version"] = self.version
        body["updatedAt"] = format_time(self.updated_at)
        return body

    @functools.cached_property
    def api_json(self) -> str:
        """`to_api()` as JSON, built once per stored flag (an in-process hit serves it as it is)."""
        return json.dumps(self.to_api(), separators=(",", ":"), ensure_ascii=False)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
