"""What the open-loop drills (failover.py, blackhole.py) share: flags, readers, and the row they make.

Their rows carry the same columns as summary.summarize() rows, so `make drill` shows every drill
in one table; each drill module adds its own fields and its own `shortfalls()` and `notes()`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import report
from bench.common.cluster import Cluster, FlagServer
from bench.common.load import Write, read_flag, write_flag
from bench.common.measure import reader_delay
from bench.common.openloop import Reply
from bench.common.readers import PATHS, PathReader, readers_for, reply_summary


@dataclass(frozen=True)
class OpenLoopPlan:
    """What the plans of the open-loop drills start with: the read rate, and how long they read before the fault."""

    rate: float  # requests per second on each path of each server
    baseline: float


def seed(cluster: Cluster, keys: Sequence[str]) -> None:
    """Create every flag, then read each through every server on every path (a warm cache everywhere)."""
    for key in keys:
        if not write_flag(cluster.servers[0], "POST", key, {"key": key, "enabled": True}).acked:
            raise RuntimeError(f"could not create {key}")
    for server in cluster.servers:
        for key in keys:
            read_flag(server, key)


def open_readers(
    servers: Sequence[FlagServer], kill_switch: str, fillers: Sequence[str], rate: float
) -> list[PathReader]:
    """Every path of every server; single reads alternate the kill switch with the other flags."""
    keys = [key for filler in fillers for key in (kill_switch, filler)] or [kill_switch]
    return readers_for(servers, keys, rate)


def _replies(readers: Sequence[PathReader], start: float, end: float) -> list[Reply]:
    return [reply for reader in readers for reply in list(reader.replies) if start <= reply.scheduled < end]


def _described(reply: Reply, origin: float) -> dict[str, Any]:
    return {"stream": reply.stream, "status": reply.status, "error": reply.error,
            "due_s": round(reply.scheduled - origin, 3), "latency_s": round(reply.latency, 4)}  # fmt: skip


def reads_row(readers: Sequence[PathReader], start: float, end: float) -> dict[str, Any]:
    """The common read columns: every request counts for failures, those due in [start, end) for latency."""
    every = [reply for reader in readers for reply in list(reader.replies)]
    failed = [reply for reply in every if reply.status not in (200, 304)]
    during = _replies(readers, start, end)
    later = _replies(readers, start + 1.0, end)
    latency = reply_summary(during)
    return {
        "reads": len(every),
        "failed_reads": len(failed),
        "failed_examples": [_described(reply, start) for reply in failed[:5]],
        "answers_during_fault": dict(Counter(r.headers.get("x-cache") or str(r.status) for r in during)),
        "latency_during_fault_s": {
            "p50": latency["p50"],
            "p99": latency["p99"],
            "max": latency["max"],
            "p99_after_first_second": reply_summary(later)["p99"],
        },  # fmt: skip
    }


def served_since(readers: Sequence[PathReader], write: Write, since: float) -> dict[str, float | None]:
    """Per path, how long after `since` until every server served `write` (or newer) on that path, and kept
    serving it: the end of the last older read that started after `since`; None if some server never did."""
    reference = Write(write.key, write.server, write.start, since, write.status, write.version)
    delays: dict[str, float | None] = {}
    for path in PATHS:
        found = [reader_delay(reference, [r for r in reader.reads if r.key == write.key])
                 for reader in readers if reader.path == path]  # fmt: skip
        delays[path] = None if any(d is None for d in found) else max((d for d in found if d is not None), default=None)
    return delays


def shown_older(readers: Sequence[PathReader], write: Write, start: float, end: float) -> int:
    """Reads of the written flag that started in (start, end) and showed an older version."""
    return sum(1 for reader in readers for r in list(reader.reads)
               if r.key == write.key and start < r.start < end and r.version is not None
               and write.version is not None and r.version < write.version)  # fmt: skip


def worst(delays: dict[str, float | None]) -> float | None:
    return None if any(d is None for d in delays.values()) else max((d for d in delays.values() if d is not None),
                                                                     default=None)  # fmt: skip


def failed_reads(row: dict[str, Any]) -> list[str]:
    """The bar every drill starts its shortfalls with: no failed read (an answer other than 200 or 304)."""
    return [f"{row['failed_reads']} failed reads"] if row["failed_reads"] else []


def delays_by_path(row: dict[str, Any]) -> str:
    """Each path's delay until the kill switch was served everywhere, for a shortfall's message."""
    return ", ".join(
        f"{p} {report.seconds(d) if d is not None else 'never'}" for p, d in row["visible_by_path_s"].items()
    )
