"""`make bench`, over HTTP: the local server (the Lambda handler behind the pre-fork gateway) under load.

One Redis, one PostgreSQL and one local server with WORKERS processes (default: the CPUs), through
bench/common/cluster.py. For `GET /flags/{key}` and an OFREP evaluation (`POST
/ofrep/v1/evaluate/flags/{key}` with a targetingKey):

1. sequential: one keep-alive connection, one request at a time (latency without queueing);
2. closed loop with `wrk` at 16 connections (throughput; skipped, and said so, without wrk);
3. open loop at several constant rates: 10, 25, 50 and 75 % of the throughput wrk found (fixed rates
   without wrk), latency measured from each request's due time, with the generator's own lag.

Results go to bench/results/http.json; the tables are printed.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import http_load, procs, report
from bench.common.cluster import Cluster, ClusterOptions, FlagServer, running_cluster
from bench.common.http_load import Target
from bench.common.report import ms
from bench.common.results import results_file, write_results

RESULTS = results_file("http")
FLAG_KEY = "bench-flag"
OFREP_BODY = b'{"context": {"targetingKey": "42"}}'
JSON = (("Content-Type", "application/json"),)


@dataclass(frozen=True)
class HttpPlan:
    sequential: int
    wrk_seconds: float
    connections: int
    fractions: tuple[float, ...]  # open-loop rates, as fractions of wrk's throughput
    open_seconds: float
    fixed_rates: tuple[float, ...]  # open-loop rates when wrk is not there
    use_wrk: bool = True


FULL = HttpPlan(2000, 10.0, 16, (0.1, 0.25, 0.5, 0.75), 5.0, (100.0, 250.0, 500.0))
QUICK = HttpPlan(20, 1.0, 4, (0.25,), 0.5, (50.0,))


def our_targets(port: int, key: str = FLAG_KEY) -> dict[str, Target]:
    return {
        "get_flag": Target("GET /flags/{key}", port, "GET", f"/flags/{key}"),
        "ofrep": Target("OFREP evaluate", port, "POST", f"/ofrep/v1/evaluate/flags/{key}", JSON, OFREP_BODY),
        "ofrep_bulk": Target("OFREP bulk evaluate", port, "POST", "/ofrep/v1/evaluate/flags", JSON, OFREP_BODY),
    }


def create_flag(server: FlagServer, key: str = FLAG_KEY) -> None:
    """A boolean flag, on, no rules: the same as the peer's (one default strategy, enabled)."""
    answer = server.admin("POST", "/admin/flags", {"key": key, "enabled": True, "description": "bench"})
    if answer.status not in (200, 201):
        raise RuntimeError(f"could not create {key}: HTTP {answer.status} {answer.body[:200]!r}")


def check(target: Target) -> None:
    """One request answered 200 before anything is timed (a benchmark of 404s measures nothing)."""
    status, body = http_load.one_request(target)
    if status != 200:
        raise RuntimeError(f"{target.name}: HTTP {status} {body[:200]!r}")


def closed_loop(target: Target, server_pids: list[int], *, connections: int, seconds: float) -> dict[str, Any]:
    """wrk, plus the CPU the server's processes used meanwhile: per request, and in cores (load on the machine)."""
    before = sum(procs.cpu_seconds(pid) for pid in server_pids)
    result = http_load.run_wrk(target, connections=connections, duration=seconds)
    used = sum(procs.cpu_seconds(pid) for pid in server_pids) - before
    result["server_cpu_ms_per_request"] = round(1000 * used / max(1, result["requests"]), 3)
    result["server_cores_busy"] = round(used / max(result["duration_s"], 0.001), 2)
    return result


def measure_target(target: Target, plan: HttpPlan, server_pids: list[int]) -> dict[str, Any]:
    check(target)
    result: dict[str, Any] = {"sequential": http_load.sequential(target, count=plan.sequential)}
    wrk = None
    if plan.use_wrk and http_load.wrk_available():
        wrk = closed_loop(target, server_pids, connections=plan.connections, seconds=plan.wrk_seconds)
    result["wrk"] = wrk
    if wrk is not None and wrk["requests_per_s"] > 0:
        rates = [max(10.0, round(wrk["requests_per_s"] * f, -1)) for f in plan.fractions]
    else:
        rates = list(plan.fixed_rates)
    result["open_loop"] = [http_load.open_loop(target, rate=rate, duration=plan.open_seconds) for rate in rates]
    return result


def run(plan: HttpPlan, *, workers: int) -> dict[str, Any]:
    options = ClusterOptions(servers=1, flags_env="http", env=(("WORKERS", str(workers)), ("LOG_LEVEL", "INFO")))
    with running_cluster(options) as cluster:
        return run_on(cluster, plan, workers=workers)


def run_on(cluster: Cluster, plan: HttpPlan, *, workers: int) -> dict[str, Any]:
    """Every route of `our_targets` through the cluster's first server (started with `workers` workers)."""
    server = cluster.servers[0]
    create_flag(server)
    targets = our_targets(server.port)
    pids = [server.process.pid, cluster.redis.pid]
    measured = {name: measure_target(target, plan, pids) for name, target in targets.items()}
    return {
        "kind": "http",
        "plan": {**vars(plan), "workers": workers},
        "machine": report.machine(cluster),
        "wrk": http_load.wrk_available() and plan.use_wrk,
        "targets": measured,
        "server_memory": procs.tree_memory(server.process.pid),
    }


def tables(results: dict[str, Any]) -> str:
    closed = []
    for measured in results["targets"].values():
        seq, wrk = measured["sequential"], measured["wrk"]
        wrk_cells = (
            [f"{wrk['requests_per_s']:.0f}", ms(wrk["p50_ms"]), ms(wrk["p99_ms"]), wrk["failed"],
             ms(wrk["server_cpu_ms_per_request"])]
            if wrk
            else ["(no wrk)", "", "", "", ""]
        )  # fmt: skip
        closed.append([seq["target"], ms(seq["p50_ms"]), ms(seq["p99_ms"]), http_load.failures(seq), *wrk_cells])
    connections = results["plan"]["connections"]
    head = ["route", "sequential p50", "sequential p99", "failed", f"wrk req/s ({connections} conn.)", "wrk p50",
            "wrk p99", "wrk errors", "server CPU per request"]  # fmt: skip
    parts = [report.markdown_table(head, closed)]
    rows = []
    for measured in results["targets"].values():
        for run in measured["open_loop"]:
            rows.append(
                [run["target"], f"{run['rate']:.0f}", f"{run['achieved_rate']:.0f}", ms(run["p50_ms"]),
                 ms(run["p95_ms"]), ms(run["p99_ms"]), ms(run["max_ms"]),
                 f"{ms(run['generator_lag_p99_ms'])} / {ms(run['generator_lag_max_ms'])}",
                 http_load.failures(run)]
            )  # fmt: skip
    head = ["open loop", "rate/s", "achieved/s", "p50", "p95", "p99", "max", "generator lag p99 / max", "failed"]
    parts.append(report.markdown_table(head, rows))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the tooling, measures nothing")
    parser.add_argument("--no-wrk", action="store_true", help="skip the closed-loop wrk runs")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.no_wrk:
        plan = HttpPlan(**{**vars(plan), "use_wrk": False})
    results = run(plan, workers=args.workers)
    print(tables(results))
    write_results(results, args.out, form="quick" if args.quick else "full")
    # Open-loop errors (timeouts past saturation) are measurements, shown in the table; a failed sequential
    # read means the server did not answer as it should, and the run is not a measurement of it.
    return 1 if any(http_load.failures(m["sequential"]) for m in results["targets"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
