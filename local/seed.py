"""Demo flags for `make dev`: written once, into an empty database only, through the service layer.

Writing through the service (not SQL) gives the demo flags real versions, audit rows and outbox rows,
exactly as if someone had POSTed them to /admin/flags.
"""

from __future__ import annotations

import copy
from typing import Any

SEED_ACTOR = "local-seed"
DEMO_FLAGS: tuple[dict[str, Any], ...] = (
    {
        "key": "payments-kill-switch",
        "description": 'Kill switch: PATCH {"enabled": false} turns payments off everywhere',
        "enabled": True,
    },
    {
        "key": "checkout-theme",
        "description": "String variants with a targeting rule",
        "enabled": True,
        "variants": {"classic": "classic", "modern": "modern"},
        "defaultVariant": "classic",
        "offVariant": "classic",
        "rules": [
            {
                "name": "beta countries",
                "conditions": [{"attribute": "country", "operator": "in", "values": ["DE", "FR"]}],
                "variant": "modern",
            }
        ],
    },
    {
        "key": "new-search",
        "description": "Percentage rollout: 25 % of users by targetingKey",
        "enabled": True,
        "rollout": [{"variant": "on", "weight": 25}, {"variant": "off", "weight": 75}],
    },
)


def seed_demo_flags(service: Any = None) -> list[str]:
    """Create the demo flags if the database holds no flag at all; return the keys written (none otherwise)."""
    if service is None:
        from flagservice.wiring import get_service

        service = get_service()
    from flagservice.validation import parse_definition

    if service.list_flags(after=None, limit=1).items:
        return []
    for definition in DEMO_FLAGS:
        service.put_flag(parse_definition(copy.deepcopy(definition)), actor=SEED_ACTOR, if_match=None)
    return [definition["key"] for definition in DEMO_FLAGS]
