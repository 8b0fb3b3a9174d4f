"""The flags every OFREP suite evaluates, one per case of issue 6, created through the admin API.

The split flags come from the committed flagd-testbed vectors (tests/vectors/), so the expected variant of
each user is flagd's, not something this project's code computed. The demo flags of `make dev` are there
too, because docs/openfeature.md's examples (run by the tests) use them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mmh3

from local.seed import DEMO_FLAGS

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "flagd_fractional_v2.json"
SPLIT_SCENARIOS = ("Fractional operator", "Fractional operator shorthand")

BOOLEAN = "dark-mode"
STRING = "banner-text"
INTEGER = "max-items"
FLOAT = "discount-rate"
OBJECT = "theme-config"
DISABLED = "legacy-checkout"
SPLIT = "fractional-flag"

STATIC_FLAGS: tuple[dict[str, Any], ...] = (
    {"key": BOOLEAN, "enabled": True},
    {
        "key": STRING,
        "enabled": True,
        "variants": {"english": "Welcome", "german": "Willkommen"},
        "defaultVariant": "english",
        "offVariant": "english",
        "rules": [
            {
                "name": "German speakers",
                "conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "AT"]}],
                "variant": "german",
            }
        ],
    },
    {
        "key": INTEGER,
        "enabled": True,
        "variants": {"small": 10, "large": 50},
        "defaultVariant": "large",
        "offVariant": "small",
    },
    {
        # 2.0 is the value that matters: a float flag's values stay JSON floats, so `2.0`, never `2`.
        "key": FLOAT,
        "enabled": True,
        "variants": {"none": 0.5, "full": 2.0},
        "defaultVariant": "full",
        "offVariant": "none",
    },
    {
        "key": OBJECT,
        "enabled": True,
        "variants": {
            "light": {"background": "#ffffff", "fonts": ["Inter", "Roboto"], "compact": False},
            "dark": {"background": "#101010", "fonts": ["Inter"], "compact": True},
        },
        "defaultVariant": "dark",
        "offVariant": "light",
    },
    {
        "key": DISABLED,
        "enabled": False,
        "variants": {"new": "v2", "old": "v1"},
        "defaultVariant": "new",
        "offVariant": "old",
    },
)


def split_cases() -> list[dict[str, Any]]:
    """The testbed cases whose flags we create: flag key, targetingKey, expected variant and value."""
    cases = json.loads(VECTORS.read_text())["cases"]
    return [case for case in cases if case["scenario"] in SPLIT_SCENARIOS]


def split_flags() -> list[dict[str, Any]]:
    """One flag per testbed flag of `split_cases()`, in our format (offVariant: the testbed's default)."""
    flags: dict[str, dict[str, Any]] = {}
    for case in split_cases():
        flags[case["flagKey"]] = {
            "key": case["flagKey"],
            "enabled": True,
            "variants": case["variants"],
            "defaultVariant": case["defaultVariant"],
            "offVariant": case["defaultVariant"],
            "rollout": case["rollout"],
        }
    return list(flags.values())


def all_flags() -> list[dict[str, Any]]:
    return [*STATIC_FLAGS, *split_flags(), *DEMO_FLAGS]


def splitting_keys() -> frozenset[str]:
    """Keys of the flags that can split (a rollout, top-level or in a rule): they need a targetingKey."""
    return frozenset(
        flag["key"]
        for flag in all_flags()
        if "rollout" in flag or any("rollout" in rule for rule in flag.get("rules", []))
    )


def reference_variant(flag_key: str, targeting_key: str, rollout: list[dict[str, Any]]) -> str:
    """CONTRACT.md section 3 computed with mmh3 directly, independently of flagservice.flags.bucketing."""
    bucket = (mmh3.hash((flag_key + targeting_key).encode(), 0, signed=False) * 100) >> 32
    cumulative = 0
    for entry in rollout:
        cumulative += entry["weight"]
        if bucket < cumulative:
            return str(entry["variant"])
    raise AssertionError(f"the weights of {flag_key} do not sum to 100")


def split_rollout(key: str = SPLIT) -> list[dict[str, Any]]:
    return next(flag["rollout"] for flag in split_flags() if flag["key"] == key)
