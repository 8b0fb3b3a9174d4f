"""The bars of the ordering rounds (what kept a hold point from meeting them) and their tables."""

from __future__ import annotations

from typing import Any

from bench.common import report


def order_shortfalls(row: dict[str, Any]) -> list[str]:
    """What kept a hold point from "every read path current within the grace, no ETag reuse"."""
    missed = []
    if not all(r["engaged"] for r in row["rounds"]):
        missed.append("a hold never engaged (harness: no write reached the trigger)")
    refused = [r for r in row["rounds"] if r["first"]["status"] >= 300 or r["second"]["status"] >= 300]
    if refused:
        missed.append(f"{len(refused)} rounds with a refused write: " + ", ".join(
            f"{r['first']['status']}/{r['second']['status']}" for r in refused))  # fmt: skip
    for path, stats in row["paths"].items():
        if stats["failed"]:
            missed.append(f"{path}: {stats['failed']} failed reads")
        if stats["stale_after_grace"] or stats["not_converged"]:
            missed.append(f"{path}: {stats['stale_after_grace']} reads older than a write acknowledged "
                          f"> {row['grace_s']} s before ({stats['shown_enabled_after_grace']} showed it enabled), "
                          f"{stats['not_converged']} never current")  # fmt: skip
    if row["etags_reused"]:
        missed.append(f"{row['etags_reused']} ETags named two different flag lists (304 for changed content)")
    return missed


def if_match_shortfalls(rounds: list[dict[str, Any]]) -> list[str]:
    missed = []
    if not all(r["engaged"] for r in rounds):
        missed.append("an If-Match hold never engaged (harness: no write reached the trigger)")
    reverted = sum(1 for r in rounds if r["reverted"])
    if reverted:
        missed.append(f"If-Match: * reverted an acknowledged kill switch in {reverted} of {len(rounds)} rounds")
    return missed


def shortfalls(row: dict[str, Any]) -> list[str]:
    return order_shortfalls(row) + if_match_shortfalls(row["if_match"])


def table(results: dict[str, Any]) -> str:
    rows = []
    for point in results["points"]:
        for path, s in point["paths"].items():
            rows.append([point["point"], path, f"{s['failed']} / {s['requests']}",
                         " / ".join(report.seconds(s[k]) for k in ("p50", "p99", "max")),
                         f"{s['stale_after_grace']} ({s['shown_enabled_after_grace']})",
                         report.seconds(s["worst_delay_s"]) if not s["not_converged"] else "never"])  # fmt: skip
    head = ["hold point", "path", "failed reads", "latency p50 / p99 / max",
            f"reads older than a 2xx > {results['plan']['grace']:.0f} s before (kill switch shown enabled)",
            "worst delay"]  # fmt: skip
    return report.markdown_table(head, rows)


def summary_table(results: dict[str, Any]) -> str:
    rows = []
    for point in results["points"]:
        rounds = point["rounds"]
        early = sum(1 for r in rounds if r["second_answered_while_first_held"])
        reverted = sum(1 for r in point["if_match"] if r["reverted"])
        rows.append([point["point"], len(rounds), f"{early} of {len(rounds)}", point["etags_reused"],
                     f"{reverted} of {len(point['if_match'])}", "; ".join(shortfalls(point)) or "all met"])  # fmt: skip
    head = ["hold point", "rounds", "kill switch answered while the other write was held", "ETags naming two bodies",
            "If-Match: * reverted the kill switch", "bars"]  # fmt: skip
    return report.markdown_table(head, rows)
