"""`make bench-peer`: our local server against Unleash 8, same machine, same client, same run (DESIGN.md bars).

The peer: npm `unleash-server` pinned in bench/peer/unleash/package.json and its lock file (`npm ci`),
started by bench/peer/unleash/launcher.mjs on 127.0.0.1 with its own throwaway PostgreSQL (the
unprivileged-user recipe of local.embedded.start_postgres), telemetry and version
checks off, rate limits raised. Tokens come from INIT_*_API_TOKENS; the equivalent flag (a release
toggle with the default strategy, on in `development`) is made with three admin calls, and read as
its SDKs read it: `GET /api/frontend?userId=42` with the frontend token raw in Authorization.

Ours: the local server (WORKERS processes, default the CPUs) on its own Redis and PostgreSQL,
with the same flag (boolean, on, no rules), read as `GET /flags/{key}`, as an OFREP evaluation and
as an OFREP bulk evaluation (the like-for-like of /api/frontend: every flag for one context).

Same loads for every route, one server at a time, after an untimed warm-up: sequential (one
keep-alive connection, the Python client of common/http_load/), sequential again with `wrk -c1` (whose
own cost per request is far smaller, so the ratio is closer to the servers' own), and `wrk` at 16
connections. Ratios against DESIGN.md: p50 ours / Unleash <= 0.5, requests/s ours / Unleash >= 2.
When a bar is missed (or with --profile), ours is sampled with py-spy under the same wrk load
and the time is broken down by layer (common/pyprofile.py). Results: bench/results/peer.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import http_load, procs, pyprofile, report
from bench.common.client import request
from bench.common.cluster import ClusterOptions, running_cluster
from bench.common.http_load import Target
from bench.common.report import ms
from bench.common.results import results_file, write_results
from bench.http import local_server
from local.embedded import ServerProcess, free_port, start_postgres

UNLEASH_DIR = Path(__file__).resolve().parent / "unleash"  # npm ci by make bench-peer
RESULTS = results_file("peer")
ADMIN_TOKEN = "*:*.admin-secret"
FRONTEND_TOKEN = "default:development.frontend-secret"
FLAG_KEY = local_server.FLAG_KEY
READY_SECONDS = 120.0
P50_BAR = 0.5
RPS_BAR = 2.0


@dataclass(frozen=True)
class PeerPlan:
    sequential: int
    wrk_seconds: float
    connections: int
    profile_seconds: float
    warmup_seconds: float  # closed-loop load on each route first, untimed (Node's JIT needs it; so does ours)


FULL = PeerPlan(sequential=2000, wrk_seconds=10.0, connections=16, profile_seconds=8.0, warmup_seconds=5.0)
QUICK = PeerPlan(sequential=20, wrk_seconds=1.0, connections=4, profile_seconds=1.0, warmup_seconds=0.0)


@dataclass
class Unleash:
    process: subprocess.Popen[bytes]
    port: int
    postgres: ServerProcess
    log_path: Path
    startup_s: float
    version: str

    def stop(self) -> None:
        """SIGTERM to its process group (Unleash stops gracefully), SIGKILL if it lingers; then its PostgreSQL."""
        try:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(5)
        finally:
            self.postgres.stop()


def unleash_version() -> str:
    manifest = UNLEASH_DIR / "node_modules" / "unleash-server" / "package.json"
    if not manifest.exists():
        raise RuntimeError(f"Unleash is not installed: run `npm ci` in {UNLEASH_DIR} (make bench-peer does)")
    return str(json.loads(manifest.read_text())["version"])


def unleash_env(http_port: int, db_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "UNLEASH_"))}
    env.update(
        UNLEASH_HTTP_PORT=str(http_port), UNLEASH_DB_PORT=str(db_port), NODE_ENV="production",
        INIT_ADMIN_API_TOKENS=ADMIN_TOKEN, INIT_FRONTEND_API_TOKENS=FRONTEND_TOKEN,
        SDK_API_RATE_LIMIT_PER_MINUTE="100000000", TOKEN_AUTHENTICATION_RATE_LIMIT_PER_MINUTE="100000000",
        FRONTEND_METRICS_RATE_LIMIT_PER_MINUTE="100000000", REGISTER_FRONTEND_RATE_LIMIT_PER_MINUTE="100000000",
        CHECK_VERSION="false", SEND_TELEMETRY="false", SCARF_ANALYTICS="false", DO_NOT_TRACK="1",
        UNLEASH_LOG_LEVEL="warn",
    )  # fmt: skip
    return env


def start_unleash(workdir: Path) -> Unleash:
    """Unleash's own PostgreSQL, then Unleash; ready when /health answers 200."""
    version = unleash_version()
    postgres = start_postgres(data_dir=workdir / "unleash-postgres", prefer=os.environ.get("DEV_SERVERS") or "system")
    port, log_path = free_port(), workdir / "unleash.log"
    began = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            ["node", "launcher.mjs"], cwd=UNLEASH_DIR, env=unleash_env(port, postgres.port),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    unleash = Unleash(process, port, postgres, log_path, 0.0, version)
    try:
        _wait_healthy(unleash, began + READY_SECONDS)
    except BaseException:
        unleash.stop()
        raise
    unleash.startup_s = round(time.monotonic() - began, 2)
    return unleash


def _wait_healthy(unleash: Unleash, deadline: float) -> None:
    while time.monotonic() < deadline:
        if unleash.process.poll() is not None:
            log = unleash.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"Unleash exited while starting:\n{log}")
        if request(unleash.port, "GET", "/health", timeout=2).status == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"Unleash did not answer /health within {READY_SECONDS} s")


def create_unleash_flag(port: int, key: str = FLAG_KEY) -> None:
    """The three admin calls: the toggle, the default strategy in `development`, switched on."""
    headers = {"Authorization": ADMIN_TOKEN, "Content-Type": "application/json"}
    base = f"/api/admin/projects/default/features/{key}"
    calls = [
        ("/api/admin/projects/default/features", {"name": key, "type": "release"}),
        (f"{base}/environments/development/strategies", {"name": "default", "parameters": {}}),
        (f"{base}/environments/development/on", None),
    ]
    for path, body in calls:
        answer = request(port, "POST", path, body=body, headers=headers, timeout=10)
        if answer.status not in (200, 201):
            raise RuntimeError(f"Unleash POST {path}: HTTP {answer.status} {answer.body[:300]!r}")


def unleash_target(port: int) -> Target:
    return Target("Unleash GET /api/frontend?userId=42", port, "GET", "/api/frontend?userId=42",
                  (("Authorization", FRONTEND_TOKEN),))  # fmt: skip


def wait_flag_visible(target: Target, key: str, timeout: float = 30.0) -> None:
    """The frontend API serves from a cache it refreshes by itself: wait until it shows the toggle on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_load.one_request(target)
        if status == 200 and any(t.get("name") == key and t.get("enabled") for t in json.loads(body)["toggles"]):
            return
        time.sleep(0.25)
    raise RuntimeError(f"Unleash's frontend API did not show {key} enabled within {timeout} s")


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


def _workdir() -> Path:
    """A folder PostgreSQL's unprivileged user can enter (a root-owned mkdtemp under /tmp is mode 700)."""
    base = Path("/var/tmp") if os.access("/var/tmp", os.W_OK) else Path(tempfile.gettempdir())
    path = Path(tempfile.mkdtemp(prefix="flagservice-peer-", dir=base))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def running_unleash() -> Iterator[Unleash]:
    workdir = _workdir()
    try:
        unleash = start_unleash(workdir)
        try:
            yield unleash
        finally:
            unleash.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(plan: PeerPlan, *, workers: int, use_wrk: bool, profile: str) -> dict[str, Any]:
    options = ClusterOptions(servers=1, flags_env="peer", env=(("WORKERS", str(workers)), ("LOG_LEVEL", "INFO")))
    with running_cluster(options) as cluster, running_unleash() as unleash:
        server = cluster.servers[0]
        local_server.create_flag(server)
        create_unleash_flag(unleash.port)
        peer = unleash_target(unleash.port)
        wait_flag_visible(peer, FLAG_KEY)
        targets = {**local_server.our_targets(server.port), "unleash": peer}
        ours_pids, peer_pids = [server.process.pid, cluster.redis.pid], [unleash.process.pid, unleash.postgres.pid]
        pids = {name: peer_pids if name == "unleash" else ours_pids for name in targets}
        measured = measure(targets, pids, plan, use_wrk=use_wrk)
        rows = ratios(measured)
        memory = {"ours": procs.tree_memory(server.process.pid), "unleash": procs.tree_memory(unleash.process.pid)}
        short = any("SHORT" in (row.get("p50_verdict"), row.get("rps_verdict")) for row in rows)
        profiled = None
        if use_wrk and (profile == "always" or (profile == "auto" and short)):
            profiled = profile_ours(server.process.pid, targets["get_flag"], plan, cluster.workdir)
        machine = {**report.machine(cluster), "unleash": unleash.version, "node": _node_version()}
        startup = {"unleash_s": unleash.startup_s}
    return {
        "kind": "peer",
        "plan": {**vars(plan), "workers": workers},
        "machine": machine,
        "startup": startup,
        "targets": measured,
        "ratios": rows,
        "memory": memory,
        "profile": profiled,
    }


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the tooling, measures nothing")
    parser.add_argument("--no-wrk", action="store_true")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    use_wrk = not args.no_wrk and http_load.wrk_available()
    results = run(QUICK if args.quick else FULL, workers=args.workers, use_wrk=use_wrk, profile=args.profile)
    print(tables(results))
    write_results(results, args.out, form="quick" if args.quick else "full")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
