"""Formatting shared by the harnesses and the README generator: tables, seconds, the machine a run was on."""

from __future__ import annotations

import os
import platform
from typing import Any

from bench.common.cluster import Cluster


def machine(cluster: Cluster) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "redis": f"{cluster.redis.version} ({cluster.redis.kind})",
        "postgres": f"{cluster.postgres.version} ({cluster.postgres.kind})",
    }


def seconds(value: float | None) -> str:
    """Milliseconds under a second, else seconds: '183 ms', '1.42 s', '-' for none."""
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def ms(value: float | None) -> str:
    """A value already in milliseconds: '0.42 ms', '-' for none."""
    return "-" if value is None else f"{value:.2f} ms"


def markdown_table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
