"""The flags every OFREP suite evaluates, one per case of issue 6, created through the admin API.

The split flags come from the committed flagd-testbed vectors (tests/vectors/), so the expected variant of
each user is flagd's, not something this project's code computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    return [*STATIC_FLAGS, *split_flags()]
