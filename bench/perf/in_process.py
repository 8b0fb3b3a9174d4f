"""`make bench`, in process: the handler's read paths against their floors (DESIGN.md, Performance).

One run, one Redis and one PostgreSQL (bench/common/cluster.py with no servers). For each Tracer mode a
fresh Lambda-like process (container.py) times, interleaved:

    raw_get     one redis-py GET on a pooled client, of a value the flag's size     (the floor)
    l1_hit      GET /flags/{key} through `lambda_handler`, answered from L1
    redis_hit   the same with the L1 cleared before each call: one Redis round trip
    db_read     GET /flags/{key} on a service without any cache: a database-only read  (the floor)
    db_raw      one PostgresFlagRepository.get (prepared primary-key SELECT), for reference
    redis_down  GET /flags/{key} with Redis refused and the breaker open: BYPASS

Ratios are of medians (p50). "Tracer off" is POWERTOOLS_TRACE_DISABLED=true (as deployed, see
stacks/constructs/flag_function.py); "Tracer on" forces it on as in Lambda (LAMBDA_TASK_ROOT,
`_X_AMZN_TRACE_ID` with Sampled=1, so every request is traced) with segments sent to a local UDP
port that is read and discarded. Logger at INFO and Metrics (EMF to stdout) are on in both.

Also: cold start (coldstart.py) and RSS per process after 10,000 reads. Results go to
bench/results/perf.json; the table of ratios against the bars is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPO
from bench.common import pyprofile, report
from bench.common.cluster import Cluster, ClusterOptions, running_cluster
from bench.common.results import results_file, write_results
from bench.perf import coldstart
from bench.perf.container import FLAG_KEY
from local.embedded import free_port

RESULTS = results_file("perf")
MODES = {"tracer-off": False, "tracer-on": True}
TRACE_HEADER = "Root=1-6745c2a0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
DROPPED = ("ADMIN_TOKEN", "DB_SECRET_ARN", "REDIS_AUTH_SECRET_ARN", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE", "PORT")


@dataclass(frozen=True)
class Plan:
    rounds: int
    batch: int
    warmup: int
    cold_repeats: int
    memory_reads: int  # RSS is read once the container has answered this many reads
    profile_seconds: float  # py-spy on each PROFILED path with Tracer off (0: no profile)


FULL = Plan(rounds=20, batch=500, warmup=300, cold_repeats=3, memory_reads=10_000, profile_seconds=4.0)
QUICK = Plan(rounds=2, batch=25, warmup=10, cold_repeats=1, memory_reads=200, profile_seconds=0.0)
PROFILED = ("l1_hit", "redis_hit")


@dataclass(frozen=True)
class Bar:
    title: str
    path: str
    floor: str
    bar: float
    stretch: float | None


BARS = (
    Bar("L1 hit through the handler / one raw GET", "l1_hit", "raw_get", 1.0, 0.5),
    Bar("Redis hit (L1 miss) through the handler / one raw GET", "redis_hit", "raw_get", 2.0, 1.5),
    Bar("read while Redis is down / database-only read", "redis_down", "db_read", 1.1, None),
)


class XraySink:
    """A UDP port standing in for the X-Ray daemon: every datagram is read, counted and discarded."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.datagrams = self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="xray-sink", daemon=True)

    def __enter__(self) -> XraySink:
        self._thread.start()
        return self

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams += 1
            self.bytes += len(data)

    def take(self) -> dict[str, int]:
        """Counts since the last call."""
        counts = {"datagrams": self.datagrams, "bytes": self.bytes}
        self.datagrams = self.bytes = 0
        return counts

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def lambda_env(cluster: Cluster, *, tracer: bool, sink_port: int) -> dict[str, str]:
    """The environment of a Lambda container of the flag function, on this machine's Redis and PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith(("DEV_", "POWERTOOLS_"))}
    env.update(
        PYTHONPATH=f"{REPO / 'runtime'}:{REPO}", REDIS_URL=cluster.redis.url, DATABASE_URL=cluster.postgres.url,
        FLAGS_ENV="perf", AWS_LAMBDA_FUNCTION_NAME="flagservice-bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
        LAMBDA_TASK_ROOT=str(REPO / "runtime"), AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1",
        _X_AMZN_TRACE_ID=TRACE_HEADER, AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{sink_port}",
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR", POWERTOOLS_TRACE_DISABLED="false" if tracer else "true",
        LOG_LEVEL="INFO", POWERTOOLS_SERVICE_NAME="feature-flags", POWERTOOLS_METRICS_NAMESPACE="FeatureFlagsBench",
    )  # fmt: skip
    return env


def run_child(env: dict[str, str], plan: Plan, dead_redis_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flagservice-perf-") as folder:
        out = Path(folder) / "child.json"
        argv = [sys.executable, "-m", "bench.perf.container", "--out", str(out), "--dead-redis-url", dead_redis_url]
        argv += ["--rounds", str(plan.rounds), "--batch", str(plan.batch), "--warmup", str(plan.warmup)]
        argv += ["--memory-reads", str(plan.memory_reads)]
        done = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"bench.perf.container failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def profile_path(env: dict[str, str], path: str, seconds: float) -> dict[str, Any]:
    """py-spy (idle samples included: waiting on Redis is part of the path) over a child calling one path."""
    exe = pyprofile.pyspy()
    if exe is None:
        return {"error": "py-spy is not installed"}
    with tempfile.TemporaryDirectory(prefix="flagservice-perf-profile-") as folder:
        out = Path(folder) / f"{path}.txt"
        argv = [exe, "record", "--idle", "--nonblocking", "--rate", "500", "--format", "raw", "--output", str(out)]
        argv += ["--", sys.executable, "-m", "bench.perf.container", "--profile", path, "--seconds", str(seconds)]
        argv += ["--dead-redis-url", "redis://127.0.0.1:1/0"]
        done = subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0 or not out.exists():
            return {"error": f"py-spy failed ({done.returncode}): {done.stderr.strip()[-400:]}"}
        return pyprofile.summarize(out.read_text(), within="profile_loop")


def ratios(modes: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for bar in BARS:
        for mode, result in modes.items():
            ours, floor = result["paths"][bar.path], result["paths"][bar.floor]
            ratio = ours["p50_ms"] / floor["p50_ms"]
            rows.append(
                {
                    "title": bar.title, "mode": mode, "path": bar.path, "floor": bar.floor,
                    "ours_p50_ms": ours["p50_ms"], "floor_p50_ms": floor["p50_ms"],
                    "ratio": round(ratio, 3), "p99_ratio": round(ours["p99_ms"] / floor["p99_ms"], 3),
                    "bar": bar.bar, "stretch": bar.stretch, "verdict": verdict(ratio, bar.bar, bar.stretch),
                }
            )  # fmt: skip
    return rows


def verdict(ratio: float, bar: float, stretch: float | None) -> str:
    if stretch is not None and ratio <= stretch:
        return "stretch met"
    return "bar met" if ratio <= bar else "SHORT"


def run(plan: Plan, cluster: Cluster | None = None) -> dict[str, Any]:
    """Both Tracer modes, then the cold starts, on one Redis and one PostgreSQL (`cluster`'s, or new ones)."""
    with contextlib.ExitStack() as stack:
        if cluster is None:
            cluster = stack.enter_context(running_cluster(ClusterOptions(servers=0, flags_env="perf")))
        sink = stack.enter_context(XraySink())
        dead_redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there: Redis refused
        modes, cold = {}, {}
        for mode, tracer in MODES.items():
            sink.take()
            modes[mode] = run_child(lambda_env(cluster, tracer=tracer, sink_port=sink.port), plan, dead_redis_url)
            time.sleep(0.2)  # the last datagrams reach the sink
            modes[mode]["xray_udp"] = sink.take()
        for mode, tracer in MODES.items():
            env = lambda_env(cluster, tracer=tracer, sink_port=sink.port)
            cold[mode] = coldstart.measure(env, FLAG_KEY, repeats=plan.cold_repeats)
        profiles = {}
        if plan.profile_seconds:
            env = lambda_env(cluster, tracer=False, sink_port=sink.port)
            profiles = {path: profile_path(env, path, plan.profile_seconds) for path in PROFILED}
        machine = report.machine(cluster)
    return {
        "kind": "perf",
        "plan": vars(plan),
        "machine": machine,
        "modes": modes,
        "ratios": ratios(modes),
        "cold_start": cold,
        "memory": {mode: result["memory"] for mode, result in modes.items()},
        "profile": profiles,
    }


def tables(results: dict[str, Any]) -> str:
    """The ratio table, then cold start and memory, as Markdown."""
    rows = [
        [r["title"], r["mode"], f"{r['ours_p50_ms'] * 1000:.0f} µs", f"{r['floor_p50_ms'] * 1000:.0f} µs",
         f"{r['ratio']:.2f}", f"≤ {r['bar']}", f"≤ {r['stretch']}" if r["stretch"] else "", r["verdict"]]
        for r in results["ratios"]
    ]  # fmt: skip
    head = ["path / floor", "Tracer", "ours p50", "floor p50", "ratio", "bar", "stretch", "verdict"]
    parts = [report.markdown_table(head, rows)]
    cold_rows = []
    for mode, cold in results["cold_start"].items():
        top = [f"{name} {ms:.0f}" for name, ms in cold["imports_ms"].items() if name != "total"][:6]
        cold_rows.append(
            [mode, report.seconds(cold["interpreter_s"]), report.seconds(cold["import_s"]),
             report.seconds(cold["first_request_s"]), report.seconds(cold["total_s"]),
             f"{cold['imports_ms']['total']:.0f} ms: " + ", ".join(top)]
        )  # fmt: skip
    head = ["cold start", "interpreter", "handler import (+ warm)", "first request", "total", "imports (ms, self time)"]
    parts.append(report.markdown_table(head, cold_rows))
    mem_rows = [
        [mode, f"{m['after_import']['rss_kib'] / 1024:.1f} MiB", m["after_reads"]["reads"],
         f"{m['after_reads']['rss_kib'] / 1024:.1f} MiB", m.get("after_timing", {}).get("reads", "-"),
         f"{m.get('after_timing', {}).get('rss_kib', 0) / 1024:.1f} MiB"]
        for mode, m in results["memory"].items()
    ]  # fmt: skip
    head = ["memory per process", "RSS after import", "reads", "RSS", "reads (all timed)", "RSS"]
    parts.append(report.markdown_table(head, mem_rows))
    profiles = results.get("profile") or {}
    if profiles:
        parts.append(profile_table(profiles))
    return "\n\n".join(parts)


def profile_table(profiles: dict[str, Any]) -> str:
    """Per profiled path (Tracer off), the share of its time in each layer (py-spy, waiting included)."""
    names = list(profiles)
    layers: list[str] = []
    for summary in profiles.values():
        layers += [layer for layer in summary.get("layers", {}) if layer not in layers]
    rows = [[layer, *(f"{profiles[n].get('layers', {}).get(layer, 0.0):.1f} %" for n in names)] for layer in layers]
    errors = [f"{name}: {summary['error']}" for name, summary in profiles.items() if summary.get("error")]
    table = report.markdown_table(["where the time goes (Tracer off)", *names], rows) if rows else ""
    return "\n".join([table, *errors]).strip()


def problems(results: dict[str, Any]) -> list[str]:
    """Answers that were not the path's expected outcome (the measurement would be of something else)."""
    found = []
    for mode, result in results["modes"].items():
        for path, summary in result["paths"].items():
            if summary.get("unexpected"):
                found.append(f"{mode} {path}: unexpected answers {summary['unexpected']}")
        if not result.get("breaker_open_at_end"):
            found.append(f"{mode}: the breaker was not open at the end of the Redis-down phase")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the tooling, measures nothing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results = run(QUICK if args.quick else FULL)
    results["problems"] = problems(results)
    print(tables(results))
    for problem in results["problems"]:
        print(f"PROBLEM: {problem}")
    write_results(results, args.out, form="quick" if args.quick else "full")
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
