"""Schemathesis hooks for the OFREP run (loaded through SCHEMATHESIS_HOOKS by test_openapi_conformance.py).

OFREP's request schemas accept requests its own protocol answers with 400: `evaluationRequest` has no
`type: object` (so `true`, `0.0` or `[null]` are schema-valid bodies), `context` is an object with no
properties (so `{"targetingKey": 42}` is valid) and the request body is optional, while the same spec lists
`PARSE_ERROR`, `INVALID_CONTEXT` and `TARGETING_KEY_MISSING` as the 400 codes. schemathesis.toml therefore
lets `positive_data_acceptance` accept a 400, and the check below takes that tolerance back: a 400 to a
schema-valid request passes only with the one code CONTRACT.md section 2 gives that request. Any other 400
(a valid context refused, a code from the wrong class) fails the run.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.core import NOT_SET

from tests.ofrep import flags

SPLIT_KEYS = flags.splitting_keys()


def expected_rejection(body: Any) -> str | None:
    """The errorCode CONTRACT.md section 2 gives this schema-valid body, or None for a body it accepts."""
    if body is NOT_SET or not isinstance(body, dict):
        return "PARSE_ERROR"  # no body, or a JSON value that is not an object
    context = body.get("context")
    if not isinstance(context, dict):
        # Stricter than OFREP, where `context` is optional (flagd evaluates such a request with an empty
        # context): CONTRACT.md section 2 makes a missing context INVALID_CONTEXT.
        return "INVALID_CONTEXT"
    if "targetingKey" in context and not isinstance(context["targetingKey"], str):
        return "INVALID_CONTEXT"
    return None


def split_needs_targeting_key(case: Any) -> bool:
    """TARGETING_KEY_MISSING is right only for a split flag, when the context has no non-empty targetingKey."""
    context = case.body.get("context") if isinstance(case.body, dict) else None
    key = (case.path_parameters or {}).get("key")
    return key in SPLIT_KEYS and isinstance(context, dict) and not context.get("targetingKey")


@schemathesis.check
def ofrep_rejections_follow_the_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 400 to a schema-valid request must carry exactly the code the contract gives that request."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    code = json.loads(response.text).get("errorCode")
    expected = expected_rejection(case.body)
    if expected is not None and code == expected:
        return None
    if expected is None and code == "TARGETING_KEY_MISSING" and split_needs_targeting_key(case):
        return None
    raise AssertionError(f"a schema-valid request was refused with {code}; the contract expects {expected or 200}")
