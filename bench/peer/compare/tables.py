"""The results as markdown tables: the ratios and verdicts, each route's detail, memory, the profile."""

from __future__ import annotations

from typing import Any

from bench.common import http_load, pyprofile, report
from bench.common.report import ms


def tables(results: dict[str, Any]) -> str:
    rows = []
    for r in results["ratios"]:
        one = (
            [f"{ms(r['ours_wrk1_p50_ms'])} / {ms(r['unleash_wrk1_p50_ms'])}", f"{r['wrk1_p50_ratio']:.2f}",
             r["wrk1_p50_verdict"]]
            if "wrk1_p50_ratio" in r
            else ["(no wrk)", "-", "-"]
        )  # fmt: skip
        rows.append(
            [r["route"], f"{ms(r['ours_p50_ms'])} / {ms(r['unleash_p50_ms'])}", f"{r['p50_ratio']:.2f}",
             r["p50_verdict"], *one, f"{r.get('ours_rps', 0):.0f} / {r.get('unleash_rps', 0):.0f}",
             f"{r['rps_ratio']:.2f}" if "rps_ratio" in r else "-", r.get("rps_verdict", "(no wrk)")]
        )  # fmt: skip
    conns = results["plan"]["connections"]
    head = ["ours (route)", "sequential p50, ours / Unleash", "ratio (bar ≤ 0.5)", "verdict",
            "wrk 1 conn. p50, ours / Unleash", "ratio (bar ≤ 0.5)", "verdict",
            f"req/s at {conns} conn., ours / Unleash", "ratio (bar ≥ 2)", "verdict"]  # fmt: skip
    parts = [report.markdown_table(head, rows)]
    detail = []
    for measured in results["targets"].values():
        seq, wrk = measured["sequential"], measured["wrk"] or {}
        detail.append([measured["target"], ms(seq["p50_ms"]), ms(seq["p99_ms"]), http_load.failures(seq),
                       ms(wrk.get("p50_ms")), ms(wrk.get("p99_ms")), wrk.get("failed", "-"),
                       ms(wrk.get("server_cpu_ms_per_request")), wrk.get("server_cores_busy", "-")])  # fmt: skip
    head = ["route", "sequential p50", "sequential p99", "failed", "wrk p50", "wrk p99", "wrk errors",
            "server CPU per request", "server cores busy"]  # fmt: skip
    parts.append(report.markdown_table(head, detail))
    memory = results["memory"]
    parts.append(
        f"memory: ours {memory['ours']['total_rss_kib'] / 1024:.0f} MiB RSS in {memory['ours']['processes']} processes"
        f" (master + workers), Unleash {memory['unleash']['total_rss_kib'] / 1024:.0f} MiB;"
        f" Unleash {results['machine']['unleash']} started in {results['startup']['unleash_s']} s"
    )
    if results.get("profile"):
        parts.append("where our time goes under wrk (py-spy):\n\n" + pyprofile.table(results["profile"]))
    return "\n\n".join(parts)
