"""The process's Powertools singletons: one Logger, one Metrics, one Tracer (one request at a time)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "feature-flags"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FeatureFlags"))
tracer = Tracer()

OUTCOME_METRICS = {"HIT": "CacheHit", "MISS": "CacheMiss", "BYPASS": "CacheBypass", "STALE": "StaleServed"}


def record_lookup(key: str, outcome: str, latency_ms: float) -> None:
    """One lookup: its outcome and latency as metrics, its flag key as EMF metadata (never a dimension)."""
    metrics.add_metric(name=OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="LookupLatency", unit=MetricUnit.Milliseconds, value=round(latency_ms, 3))
    metrics.add_metadata(key="flag", value=key)
    metrics.add_metadata(key="cache", value=outcome)


def record_count(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    metrics.add_metric(name=name, unit=unit, value=value)
