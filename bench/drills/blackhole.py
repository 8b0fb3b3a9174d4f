"""Issue 13: PostgreSQL silently unresponsive (a network black hole, connections kept open) under open-loop load.

Two local servers reach PostgreSQL through the fault proxy. Its HOLD mode keeps every connection
open (new ones too) and holds every byte both ways, then delivers what it held when the hole
closes, as TCP delivers what was sent into a black hole once the path is back: a statement sent
into the hole, and a COMMIT, arrive late. Every flag is cached; every path of both servers is read
open loop, and a read with no answer within `read_timeout` is failed. Steps:

1. after `baseline`, the hole opens for `hole` seconds;
2. `write_after` into it, the kill switch is PATCHed through server 2 (not read) (DESIGN.md: 503 within 3 s); its
   client gives up after twice that, as a client would, so a write that waits the hole out and commits
   late is seen for what it is: applied without an acknowledgement;
3. `health_after` into it, `/health` is asked of both servers (each must answer within 3 s);
4. the hole closes; a probe write is retried until acknowledged (writes work again: DESIGN.md, within 10 s);
5. `settle` after the hole closed, PostgreSQL itself (not through the proxy) must still hold the
   flag's version from before the write: a refused write is never applied later.

Measured: failed reads (bar: 0), latency from the schedule p50/p99/max during the hole (bar: p99
<= 250 ms), the write's status and time, /health's times, whether the write was applied late,
recovery.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.common import report
from bench.common.cluster import Cluster, ClusterOptions, running_cluster
from bench.common.faults import Fault, Mode
from bench.common.load import Write, write_flag
from bench.common.readers import run_readers
from bench.drills.open_loop import OpenLoopPlan, failed_reads, open_readers, reads_row, seed

NAME = "postgres-unresponsive"
# Servers 0 and 1 are read; the kill switch goes through server 2, which nobody reads: a local worker
# serves one request at a time (as a Lambda container does), so a write waiting out its deadline must
# not hold up the reads that share its worker's connection (in Lambda they never share a container).
OPTIONS = ClusterOptions(servers=3, proxied_postgres=True, flags_env="blackhole")
READ = slice(0, 2)
WRITE = 2
KILL_SWITCH = "blackhole-kill-switch"
PROBE = "blackhole-probe"
FILLERS = tuple(f"blackhole-flag-{i}" for i in range(5))
REFUSED_BAR = 3.0  # a write answers 503 within 3 s
HEALTH_BAR = 3.0
RECOVERY_BAR = 10.0
P99_BAR = 0.25
HOW = ("the fault proxy in front of PostgreSQL holds every byte both ways and keeps connections open (new ones "
       "too), then delivers what it held")  # fmt: skip


@dataclass(frozen=True)
class Plan(OpenLoopPlan):
    hole: float
    write_after: float
    health_after: float
    settle: float
    read_timeout: float = 2.0  # a read with no answer by then is failed (8x the 250 ms p99 bar)
    recovery_cap: float = 2 * RECOVERY_BAR


SHORT = Plan(rate=20.0, baseline=1.0, hole=9.0, write_after=1.0, health_after=1.5, settle=2.0)
LONG = Plan(rate=50.0, baseline=3.0, hole=15.0, write_after=2.0, health_after=3.0, settle=3.0)


def _stored_version(cluster: Cluster, key: str) -> tuple[int, int]:
    """The flag's version and its audit rows, read from PostgreSQL directly (never through the proxy)."""
    version = cluster.sql("SELECT version FROM flags WHERE key = %s", (key,))[0][0]
    audit = cluster.sql("SELECT count(*) FROM flag_audit WHERE key = %s", (key,))[0][0]
    return int(version), int(audit)


def _in_background(results: dict[str, Any], name: str, call: Any) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.__setitem__(name, call()), name=name, daemon=True)
    thread.start()
    return thread


def _health(cluster: Cluster, timeout: float) -> list[dict[str, Any]]:
    """`/health` of every server at once: each one's status and how long it took."""
    answers: dict[str, Any] = {}
    threads = [_in_background(answers, str(s.index), lambda s=s: s.get("/health", timeout=timeout))
               for s in cluster.servers[READ]]  # fmt: skip
    for thread in threads:
        thread.join(timeout + 5)
    return [{"server": int(i), "status": a.status, "answered_in_s": round(a.latency, 4)} for i, a in answers.items()]


def _hole(cluster: Cluster, plan: Plan) -> dict[str, Any]:
    """Steps 1 to 3; returns the times and what the write and /health answered."""
    assert cluster.postgres_proxy is not None
    waited = plan.hole + 5.0  # /health: long enough to see one that waits the hole out
    seen: dict[str, Any] = {"opened": time.monotonic()}
    cluster.postgres_proxy.set(Fault(Mode.HOLD))
    try:
        time.sleep(plan.write_after)
        flip = {"enabled": False}
        writer = _in_background(seen, "write", lambda: write_flag(cluster.servers[WRITE], "PATCH", KILL_SWITCH, flip,
                                                                  timeout=2 * REFUSED_BAR))  # fmt: skip
        time.sleep(max(0.0, plan.health_after - plan.write_after))
        checker = _in_background(seen, "health", lambda: _health(cluster, waited))
        time.sleep(max(0.0, seen["opened"] + plan.hole - time.monotonic()))
    finally:
        cluster.postgres_proxy.set(Fault())
    seen["closed"] = time.monotonic()
    writer.join(waited + 5)
    checker.join(waited + 5)
    return seen


def _recover(cluster: Cluster, since: float, cap: float) -> float | None:
    """Seconds from `since` until a probe write was acknowledged; None if not within `cap`."""
    while time.monotonic() < since + cap:
        probe = write_flag(cluster.servers[WRITE], "POST", PROBE, {"key": PROBE, "enabled": True}, timeout=5)
        if probe.acked:
            return round(probe.end - since, 4)
        time.sleep(0.1)
    return None


def run(cluster: Cluster, plan: Plan) -> dict[str, Any]:
    seed(cluster, [KILL_SWITCH, *FILLERS])
    before = _stored_version(cluster, KILL_SWITCH)
    readers = open_readers(cluster.servers[READ], KILL_SWITCH, FILLERS, plan.rate)
    loop = run_readers(readers, timeout=plan.read_timeout)
    try:
        time.sleep(plan.baseline)
        seen = _hole(cluster, plan)
    finally:
        loop.stop()
    recovered = _recover(cluster, seen["closed"], plan.recovery_cap)
    time.sleep(max(0.0, seen["closed"] + plan.settle - time.monotonic()))
    after = _stored_version(cluster, KILL_SWITCH)
    return _row(readers, seen, before, after, recovered) | {"generator_lag_s": loop.lag_summary()}


def _row(readers: list[Any], seen: dict[str, Any], before: tuple[int, int], after: tuple[int, int],
         recovered: float | None) -> dict[str, Any]:  # fmt: skip
    write: Write = seen["write"]
    applied_late = after != before and not write.acked
    return {
        "drill": NAME, "title": "PostgreSQL unresponsive (black hole)", "how": HOW, "store": "postgres",
        "fault_s": round(seen["closed"] - seen["opened"], 3),
        **reads_row(readers, seen["opened"], seen["closed"]),
        "recovery_s": recovered,
        "kill_switch": {"status": write.status, "acked": write.acked,
                        "answered_in_s": round(write.end - write.start, 4), "visible_within_s": None},
        "health": seen["health"],
        "applied_late": applied_late,
        "version_before_after": [before[0], after[0]],
        "writes_lost": 0, "written_without_acknowledgement": int(applied_late),
        "servers": 2,
    }  # fmt: skip


def shortfalls(row: dict[str, Any], *, margin: float = 1.0, latency: bool = True) -> list[str]:
    """DESIGN.md's bars; tests pass margin=2 (deadlines doubled) and latency=False (no p99 bar)."""
    missed = failed_reads(row)
    switch = row["kill_switch"]
    if switch["status"] != 503 or switch["answered_in_s"] > REFUSED_BAR * margin:
        missed.append(f"write answered {switch['status'] or 'nothing'} in {report.seconds(switch['answered_in_s'])}")
    if row["applied_late"]:
        missed.append("the refused write was applied after the hole closed")
    slow = [h for h in row["health"] if h["status"] == 0 or h["answered_in_s"] > HEALTH_BAR * margin]
    if slow or len(row["health"]) < row["servers"]:
        missed.append("/health: " + ", ".join(f"{h['status']} in {report.seconds(h['answered_in_s'])}" for h in slow))
    if row["recovery_s"] is None or row["recovery_s"] > RECOVERY_BAR * margin:
        missed.append(f"writes worked again after {row['recovery_s']} s")
    p99 = row["latency_during_fault_s"]["p99"]
    if latency and (p99 is None or p99 > P99_BAR):
        missed.append(f"p99 during the hole {report.seconds(p99)}")
    return missed


def notes(row: dict[str, Any]) -> str:
    health = ", ".join(f"{h['status']} in {report.seconds(h['answered_in_s'])}" for h in row["health"])
    answers = ", ".join(f"{k} {v}" for k, v in sorted(row["answers_during_fault"].items()))
    switch = row["kill_switch"]
    late = "applied after the hole" if row["applied_late"] else "not applied"
    return (f"write answered {switch['status'] or 'nothing'} in {report.seconds(switch['answered_in_s'])}, {late}; "
            f"/health {health}; answers during: {answers}")  # fmt: skip


def drill(plan: Plan) -> dict[str, Any]:
    with running_cluster(OPTIONS) as cluster:
        return run(cluster, plan)
