"""One scenario's outcome: each acknowledged write's delay until every reader served it, and what was read."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.common.load import Read, Write, read_flag
from bench.common.measure import summary, write_delay
from bench.common.readers import PATHS, PathReader, reply_summary
from bench.consistency.propagation.plan import TARGET_SECONDS, Context
from bench.consistency.propagation.scenarios import Scenario


def _delays(acked: list[Write], readers: list[PathReader], ctx: Context) -> list[float | None]:
    """Each write's delay over these readers (ids: server/path; a frozen server's windows apply to all its paths)."""
    by_id = {f"{r.server.index}/{r.path}": [read for read in r.reads if read.key != "*"] for r in readers}
    windows = {f"{r.server.index}/{r.path}": ctx.windows.get(r.server.index, []) for r in readers}
    own: dict[str, dict[str, list[Read]]] = {}
    for write in acked:
        own.setdefault(write.key, {rid: [read for read in reads if read.key == write.key]
                                   for rid, reads in by_id.items()})  # fmt: skip
    return [write_delay(write, own[write.key], windows) for write in acked]


def scenario_result(scenario: Scenario, writes: list[Write], readers: list[PathReader], ctx: Context) -> dict[str, Any]:
    acked = [write for write in writes if write.acked]
    delays = _delays(acked, readers, ctx)
    converged = [delay for delay in delays if delay is not None]
    per_path = {path: summary([d for d in _delays(acked, [r for r in readers if r.path == path], ctx) if d is not None])
                for path in PATHS}  # fmt: skip
    replies = [reply for reader in readers for reply in reader.replies]
    last = {write.key: write.version for write in acked}
    final = [read_flag(server, key) for server in ctx.cluster.servers[1:] for key in last]
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "writers": ctx.plan.writers,
        "writes": len(writes),
        "acknowledged": len(acked),
        "not_converged": len(delays) - len(converged),
        "delay_s": summary(converged),
        "delay_by_path_s": per_path,
        "within_target": bool(converged) and max(converged) <= TARGET_SECONDS and len(converged) == len(delays),
        "reads": len(replies),
        "failed_reads": sum(1 for reply in replies if reply.status not in (200, 304)),
        "read_latency_s": reply_summary(replies),
        "answers": dict(Counter(reply.headers.get("x-cache") or str(reply.status) for reply in replies)),
        "final_versions_agree": bool(acked) and all(read.version == last[read.key] for read in final),
        **ctx.notes,
    }
