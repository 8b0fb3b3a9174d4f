"""`flagctl rightsize --env <env>`: invoke the environment's cache right-sizing function and print its recommendation.

The function (runtime/flagservice/rightsizing/) also publishes the recommendation to the ops topic, as
its quarterly schedule does; docs/operations.md says how to read and act on it. The call waits for the
function (up to its 2-minute timeout) and is never retried: a retry would publish a second message.
"""

from __future__ import annotations

import json
from typing import Any

from flagctl.client import FlagctlError
from stacks.naming import rightsizing_function_name

ENVIRONMENTS = ("dev", "staging", "prod")
READ_TIMEOUT_SECONDS = 150  # the function's timeout (2 min) and some


def lambda_client(*, region: str | None, profile: str | None) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(profile_name=profile, region_name=region)
    if session.region_name is None:
        raise FlagctlError("rightsize needs a region: --region or AWS_REGION")
    config = Config(read_timeout=READ_TIMEOUT_SECONDS, retries={"total_max_attempts": 1})
    return session.client("lambda", config=config)


def invoke(client: Any, environment: str) -> dict[str, Any]:
    """The recommendation the function returned; a function error is a FlagctlError with its message."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = rightsizing_function_name(environment)
    try:
        answer = client.invoke(FunctionName=name, InvocationType="RequestResponse", Payload=b'{"source": "flagctl"}')
    except client.exceptions.ResourceNotFoundException:
        raise FlagctlError(f"no function {name}: is the {environment} service stack deployed in this region?") from None
    except (BotoCoreError, ClientError) as error:  # no credentials, access denied, timeout: said in one line
        raise FlagctlError(f"could not invoke {name}: {error}") from None
    payload = json.loads(answer["Payload"].read() or b"null")
    if answer.get("FunctionError") or not isinstance(payload, dict):
        details = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise FlagctlError(f"{name} failed: {details} (see its log group)")
    return payload


def render(found: dict[str, Any]) -> str:
    """The lines on-call reads; `--json` prints the whole recommendation instead."""

    def usd(amount: Any) -> str:
        return "unknown" if amount is None else f"${amount:,.2f}/month"

    seen, prices = found.get("evidence", {}), found.get("prices", {})
    return "\n".join(
        [
            f"{found['action'].upper()}: {found['node_type_now']} -> {found['node_type_recommended']} "
            f"({found['nodes']} nodes)",
            f"reason: {found['reason']}",
            f"cost: {usd(found['monthly_usd_now'])} now, {usd(found['monthly_usd_recommended'])} after "
            f"(list prices of {prices.get('date')}, {prices.get('region')})",
            f"memory p95 {seen.get('memory_p95_percent')} % ({seen.get('memory_hours')} hours), eviction hours "
            f"{seen.get('eviction_hours')}, engine CPU p95 {seen.get('engine_cpu_p95_percent')} %, "
            f"connections p95 {seen.get('connections_p95')}",
        ]
    )
