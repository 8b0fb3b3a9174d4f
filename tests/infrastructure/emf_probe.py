"""Run the real handler in a process configured like the deployed function; print what it emits.

Used by test_alarm_metrics.py in a subprocess, because Powertools reads its namespace and service from
the environment when `flagservice.telemetry` is imported. The environment is the flag function's own,
taken from the synthesized template (everything that is not a deploy-time token). Three requests:
a flag read with settings that cannot work (500 GENERAL: REDIS_URL is a token the test leaves out), then,
on the in-memory service, the same flag read twice (a MISS, then a HIT), with a pool peak to report.
Every line on stdout is the handler's own output (EMF metric lines and JSON log lines).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

VERSION = "42"


@dataclass
class Context:
    function_version: str = VERSION
    function_name: str = "flags"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:flags:live"
    aws_request_id: str = "probe"


def main() -> None:
    from flagservice import telemetry, wiring
    from flagservice.flags.model import FlagDefinition
    from flagservice.handler import lambda_handler
    from flagservice.service import FlagService
    from tests.apigw import make_event
    from tests.fakes import InMemoryFlagCache, InMemoryFlagRepository

    failed = lambda_handler(make_event("GET", "/flags/probe"), Context())
    print(json.dumps({"probe": "first status", "status": failed["statusCode"]}), file=sys.stderr)
    service = FlagService(InMemoryFlagRepository(), InMemoryFlagCache())
    service.put_flag(FlagDefinition.model_validate({"key": "probe", "enabled": True}), actor="probe", if_match=None)
    wiring.get_service = lambda: service  # type: ignore[assignment]
    telemetry.watch_pool_peak(lambda: 2)
    for _ in range(2):
        lambda_handler(make_event("GET", "/flags/probe"), Context())


if __name__ == "__main__":
    main()
