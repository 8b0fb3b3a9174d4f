"""The loads on every route (warm-up, sequential, wrk), the ratios against the bars, and py-spy on ours."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import http_load, pyprofile
from bench.common.http_load import Target
from bench.http import local_server
from bench.peer.compare.plan import P50_BAR, RPS_BAR, PeerPlan


def measure(targets: dict[str, Target], pids: dict[str, list[int]], plan: PeerPlan, *, use_wrk: bool) -> dict[str, Any]:
    """Warm every route up, then sequential for every route, then wrk for every route (with the servers' CPU)."""
    results: dict[str, Any] = {name: {"target": t.name} for name, t in targets.items()}
    for target in targets.values():
        local_server.check(target)
        if use_wrk and plan.warmup_seconds:
            http_load.run_wrk(target, connections=plan.connections, duration=plan.warmup_seconds)
    for name, target in targets.items():
        results[name]["sequential"] = http_load.sequential(target, count=plan.sequential)
    for name, target in targets.items():  # sequential again, with a client that costs ~10x less per request
        one = http_load.run_wrk(target, connections=1, threads=1, duration=plan.wrk_seconds / 2) if use_wrk else None
        results[name]["wrk_one_connection"] = one
    for name, target in targets.items():
        results[name]["wrk"] = (
            local_server.closed_loop(target, pids[name], connections=plan.connections, seconds=plan.wrk_seconds)
            if use_wrk
            else None
        )
    return results


def ratios(measured: dict[str, Any]) -> list[dict[str, Any]]:
    peer = measured["unleash"]
    rows = []
    for name, ours in measured.items():
        if name == "unleash":
            continue
        p50 = ours["sequential"]["p50_ms"] / peer["sequential"]["p50_ms"]
        row: dict[str, Any] = {
            "route": ours["target"], "ours_p50_ms": ours["sequential"]["p50_ms"],
            "unleash_p50_ms": peer["sequential"]["p50_ms"], "p50_ratio": round(p50, 3),
            "p50_verdict": "bar met" if p50 <= P50_BAR else "SHORT",
        }  # fmt: skip
        if ours.get("wrk_one_connection") and peer.get("wrk_one_connection"):
            one = ours["wrk_one_connection"]["p50_ms"] / peer["wrk_one_connection"]["p50_ms"]
            row.update(ours_wrk1_p50_ms=ours["wrk_one_connection"]["p50_ms"])
            row.update(unleash_wrk1_p50_ms=peer["wrk_one_connection"]["p50_ms"], wrk1_p50_ratio=round(one, 3))
            row.update(wrk1_p50_verdict="bar met" if one <= P50_BAR else "SHORT")
        if ours["wrk"] and peer["wrk"]:
            rps = ours["wrk"]["requests_per_s"] / max(peer["wrk"]["requests_per_s"], 0.1)
            row.update(ours_rps=ours["wrk"]["requests_per_s"], unleash_rps=peer["wrk"]["requests_per_s"])
            row.update(ours_cpu_ms=ours["wrk"]["server_cpu_ms_per_request"])
            row.update(unleash_cpu_ms=peer["wrk"]["server_cpu_ms_per_request"])
            row.update(rps_ratio=round(rps, 3), rps_verdict="bar met" if rps >= RPS_BAR else "SHORT")
        rows.append(row)
    return rows


def profile_ours(server_pid: int, target: Target, plan: PeerPlan, workdir: Path) -> dict[str, Any]:
    """py-spy on our server's workers while wrk loads `target` (a run of its own: sampling costs CPU)."""
    out = workdir / "profile.txt"
    recorder = pyprofile.start_recording(server_pid, plan.profile_seconds, out)
    if recorder is None:
        return {"error": "py-spy is not installed"}
    time.sleep(0.5)  # py-spy attaches
    load = http_load.run_wrk(target, connections=plan.connections, duration=plan.profile_seconds)
    summary = pyprofile.finish_recording(recorder, out)
    summary["load"] = {"route": target.name, "requests_per_s_while_sampled": load["requests_per_s"]}
    return summary
