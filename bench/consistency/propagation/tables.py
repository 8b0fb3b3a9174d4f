"""The bars of the propagation scenarios (what kept one from meeting them) and their table."""

from __future__ import annotations

from typing import Any

from bench.common import report
from bench.common.readers import PATHS
from bench.consistency.propagation.plan import TARGET_SECONDS


def shortfalls(row: dict[str, Any], *, bound: float = TARGET_SECONDS) -> list[str]:
    """What kept a scenario from "every acknowledged write served everywhere within `bound` seconds"."""
    missed = []
    if row["acknowledged"] != row["writes"]:
        missed.append(f"{row['writes'] - row['acknowledged']} writes not acknowledged")
    if row["not_converged"]:
        missed.append(f"{row['not_converged']} writes never served by every reader")
    if row["delay_s"]["max"] is None or row["delay_s"]["max"] > bound:
        missed.append(f"worst delay {row['delay_s']['max']} s > {bound} s")
    if row["failed_reads"]:
        missed.append(f"{row['failed_reads']} failed reads")
    if not row["final_versions_agree"]:
        missed.append("readers disagree on the final version")
    return missed


def _notes(row: dict[str, Any]) -> str:
    """What the chaos of a scenario amounted to."""
    if "connections_killed" in row:
        return f"{row['connections_killed']} connections killed in {row['kill_rounds']} rounds"
    if "freezes" in row:
        return f"{row['freezes']} freezes, {row['frozen_seconds']:.1f} s frozen in all"
    if "flushes" in row:
        return f"{row['flushes']} flushes"
    return ""


def table(results: dict[str, Any]) -> str:
    rows = [
        [r["title"], r["acknowledged"], *(report.seconds(r["delay_s"][k]) for k in ("max", "p99", "median")),
         " / ".join(report.seconds(r["delay_by_path_s"][path]["max"]) for path in PATHS),
         r["not_converged"], f"{r['failed_reads']} / {r['reads']}",
         " / ".join(report.seconds(r["read_latency_s"][k]) for k in ("p50", "p99", "max")),
         "yes" if r["within_target"] else "NO", _notes(r)]
        for r in results["scenarios"]
    ]  # fmt: skip
    head = ["scenario", "writes", "max", "p99", "median", "max by path: " + " / ".join(PATHS), "not converged",
            "failed reads", "read latency p50 / p99 / max", "max <= 1 s", "chaos"]  # fmt: skip
    return report.markdown_table(head, rows)
