"""The process's Powertools singletons: one Logger, one Metrics, one Tracer (one request at a time)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "feature-flags"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FeatureFlags"))
tracer = Tracer()

OUTCOME_METRICS = {"HIT": "CacheHit", "MISS": "CacheMiss", "BYPASS": "CacheBypass", "STALE": "StaleServed"}
# Read by alarms in stacks/: a rename here must be a rename there (tests/infrastructure/test_alarm_metrics.py).
LOOKUP_LATENCY = "LookupLatency"
HIT_LATENCY = "LookupLatencyHit"  # cached reads only: the seed's p95 bar is for them
POOL_PEAK = "RedisPoolPeakInUse"
SERVER_ERRORS = "ServerErrorAnswers"  # every 5xx answer, per function version
INTERNAL_ERRORS = "InternalErrorAnswers"  # 5xx other than 503 (a store down): our own failures
VERSION_DIMENSION = "FunctionVersion"
UNAVAILABLE = 503

_pool_peak: Callable[[], int] | None = None


def record_lookup(key: str, outcome: str, latency_ms: float) -> None:
    """One lookup: its outcome and latency as metrics, its flag key as EMF metadata (never a dimension)."""
    metrics.add_metric(name=OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=LOOKUP_LATENCY, unit=MetricUnit.Milliseconds, value=round(latency_ms, 3))
    if outcome == "HIT":
        metrics.add_metric(name=HIT_LATENCY, unit=MetricUnit.Milliseconds, value=round(latency_ms, 3))
    metrics.add_metadata(key="flag", value=key)
    metrics.add_metadata(key="cache", value=outcome)


def record_count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)


def watch_pool_peak(take_peak: Callable[[], int]) -> None:
    """Where `record_answer` reads the cache pool's peak use (wiring registers it once per container)."""
    global _pool_peak
    _pool_peak = take_peak


def function_version(context: Any) -> str:
    """The version that runs: Lambda's context says so even when called through the `live` alias."""
    return str(getattr(context, "function_version", None) or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"))


def record_answer(status: int, version: str) -> None:
    """End of a request: a 5xx is counted per function version, and the pool's peak use goes out.

    The handler turns every exception into a 5xx answer, so Lambda's own `Errors` metric never sees them:
    the canary's rollback alarms watch these counts for the version being deployed. They go out at once
    as their own EMF line (dimensions `service` and `FunctionVersion`), apart from the request's metrics,
    which carry `service` alone.
    """
    if status >= 500:
        for name in (SERVER_ERRORS, INTERNAL_ERRORS) if status != UNAVAILABLE else (SERVER_ERRORS,):
            with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
                metric.add_dimension(name=VERSION_DIMENSION, value=version)
    if _pool_peak is not None:
        metrics.add_metric(name=POOL_PEAK, unit=MetricUnit.Count, value=_pool_peak())
