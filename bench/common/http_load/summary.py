"""The fields every sequential and open-loop run reports: statuses, latency in ms, and how many failed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.common.hdr import Histogram


def failures(result: dict[str, Any]) -> int:
    """Requests of a sequential or open-loop run that got no answer, or an answer other than 200."""
    errors = result["errors"]
    failed = errors if isinstance(errors, int) else sum(errors.values())
    return failed + sum(count for status, count in result["statuses"].items() if status != "200")


def status_keys(counter: Counter[int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(counter.items())}


def latency_fields(histogram: Histogram, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in histogram.summary().items() if name != "count"}
