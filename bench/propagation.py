"""Issue 7, item 4: how long after a write's 2xx does every container stop serving the older version?

One server process writes a flag (PATCH, a new version each time); every other server process reads
it in a tight loop; all share one Redis and one PostgreSQL (cluster.py). For each acknowledged write,
the delay until every reader stopped returning an older version is defined in measure.py. Reported
per scenario as max, p99 and median, against DESIGN.md's target of 1 s (the contract's bound is 5 s).

Scenarios:
- normal: nothing goes wrong.
- clients-killed: `CLIENT KILL TYPE normal` every ~100 ms kills every connection the servers hold to
  Redis. The service uses no pub/sub and no client tracking (no "notification" connection exists),
  so what is killed is the data connections that carry the revision checks themselves.
- reader-frozen: one reader's server is SIGSTOPped while writes go on, then thawed (Lambda freezes
  idle containers); its reads after the thaw are measured from the thaw.
- redis-flushed: FLUSHALL every ~600 ms behind the servers' backs while writes go on.

`make bench-propagation` runs the long form, prints the table, writes bench/results/propagation.json
and regenerates the README's Consistency section; `make test` runs the short form
(tests/integration/test_propagation.py) and asserts a worst case of 2 s (the target, 2x margin).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.cluster import Cluster, ClusterOptions, running_cluster
from bench.load import ReadLoop, Repeat, Write, read_flag, write_flag
from bench.measure import Window, summary, write_delay

TARGET_SECONDS = 1.0
RESULTS = Path(__file__).resolve().parent / "results" / "propagation.json"


@dataclass(frozen=True)
class Plan:
    writes: int  # per scenario
    gap: tuple[float, float]  # seconds between writes, drawn uniformly (never in step with the 250 ms checks)
    warmup: float
    tail: float  # reading on after the last write, so every reader is seen to converge
    pause: float  # between one reader's reads (0: a tight loop)
    freeze: float  # seconds a frozen reader stays frozen
    freezes: int  # how many times it is frozen during the writes
    kill_every: float = 0.1
    flush_every: float = 0.6


SHORT = Plan(writes=12, gap=(0.15, 0.35), warmup=0.5, tail=1.5, pause=0.002, freeze=1.2, freezes=1)
LONG = Plan(writes=150, gap=(0.1, 0.4), warmup=1.0, tail=2.5, pause=0.0, freeze=2.0, freezes=6)


@dataclass
class Context:
    cluster: Cluster
    plan: Plan
    windows: dict[int, list[Window]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def nothing(ctx: Context) -> Iterator[None]:
    yield


@contextlib.contextmanager
def clients_killed(ctx: Context) -> Iterator[None]:
    admin = ctx.cluster.redis_admin()
    with Repeat(ctx.plan.kill_every, lambda: admin.client_kill_filter(_type="normal", skipme=True)) as killer:
        yield
    ctx.notes.update(kill_rounds=len(killer.results), connections_killed=sum(killer.results))


@contextlib.contextmanager
def redis_flushed(ctx: Context) -> Iterator[None]:
    admin = ctx.cluster.redis_admin()
    with Repeat(ctx.plan.flush_every, admin.flushall) as flusher:
        yield
    ctx.notes.update(flushes=len(flusher.results))


@contextlib.contextmanager
def reader_frozen(ctx: Context) -> Iterator[None]:
    """Freeze the first reader `plan.freezes` times while the writes run, each time for `plan.freeze` seconds."""
    server, stop = ctx.cluster.servers[1], threading.Event()
    windows = ctx.windows.setdefault(server.index, [])

    def freezer() -> None:
        for _ in range(ctx.plan.freezes):
            if stop.wait(ctx.plan.freeze / 2):
                return
            frozen_at = time.monotonic()
            server.freeze()
            stop.wait(ctx.plan.freeze)
            server.thaw()
            windows.append((frozen_at, time.monotonic()))
            stop.wait(ctx.plan.freeze)

    thread = threading.Thread(target=freezer, name="freezer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        server.thaw()
    ctx.notes.update(freezes=len(windows), frozen_seconds=round(sum(b - a for a, b in windows), 3))


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    chaos: Callable[[Context], AbstractContextManager[None]]


SCENARIOS = (
    Scenario("normal", "normal", nothing),
    Scenario("clients-killed", "Redis connections killed every 100 ms (CLIENT KILL TYPE normal)", clients_killed),
    Scenario("reader-frozen", "a reader frozen (SIGSTOP) during writes, then thawed", reader_frozen),
    Scenario("redis-flushed", "Redis flushed (FLUSHALL) every 600 ms during writes", redis_flushed),
)


def _write_series(ctx: Context, key: str, rng: random.Random) -> list[Write]:
    writer, writes = ctx.cluster.servers[0], []
    for i in range(ctx.plan.writes):
        writes.append(write_flag(writer, "PATCH", key, {"description": f"write {i}"}))
        time.sleep(rng.uniform(*ctx.plan.gap))
    return writes


def run_scenario(cluster: Cluster, scenario: Scenario, plan: Plan, rng: random.Random) -> dict[str, Any]:
    """Create the scenario's flag, start the readers, write under the scenario's chaos, read on, measure."""
    key = f"propagation-{scenario.name}"
    created = write_flag(cluster.servers[0], "POST", key, {"key": key, "enabled": True})
    if not created.acked:
        raise RuntimeError(f"could not create {key}: HTTP {created.status}")
    loops = [ReadLoop(server, [key], plan.pause).start() for server in cluster.servers[1:]]
    time.sleep(plan.warmup)
    ctx = Context(cluster, plan)
    try:
        with scenario.chaos(ctx):
            writes = _write_series(ctx, key, rng)
        time.sleep(plan.tail)
    finally:
        for loop in loops:
            loop.stop()
    return _result(scenario, writes, loops, ctx)


def _result(scenario: Scenario, writes: list[Write], loops: list[ReadLoop], ctx: Context) -> dict[str, Any]:
    acked = [write for write in writes if write.acked]
    readers = {loop.server.index: loop.reads for loop in loops}
    delays = [write_delay(write, readers, ctx.windows) for write in acked]
    converged = [delay for delay in delays if delay is not None]
    reads = [read for loop in loops for read in loop.reads]
    last = [read_flag(server, acked[-1].key) for server in ctx.cluster.servers[1:]] if acked else []
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "writes": len(writes),
        "acknowledged": len(acked),
        "not_converged": len(delays) - len(converged),
        "delay_s": summary(converged),
        "within_target": bool(converged) and max(converged) <= TARGET_SECONDS and len(converged) == len(delays),
        "reads": len(reads),
        "failed_reads": sum(1 for read in reads if not read.ok),
        "answers": dict(Counter(read.cache or str(read.status) for read in reads)),
        "final_versions_agree": bool(acked) and all(read.version == acked[-1].version for read in last),
        **ctx.notes,
    }


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


def run(plan: Plan, *, servers: int = 4, scenarios: tuple[Scenario, ...] = SCENARIOS) -> dict[str, Any]:
    """Every scenario on one cluster (1 writer, servers - 1 readers); the results as one JSON-ready dict."""
    rng = random.Random(7)
    with running_cluster(ClusterOptions(servers=servers, flags_env="propagation")) as cluster:
        results = [run_scenario(cluster, scenario, plan, rng) for scenario in scenarios]
        machine = report.machine(cluster)
    return {
        "kind": "propagation",
        "target_seconds": TARGET_SECONDS,
        "readers": servers - 1,
        "plan": vars(plan),
        "machine": machine,
        "scenarios": results,
    }


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
         r["not_converged"], f"{r['failed_reads']} / {r['reads']}", "yes" if r["within_target"] else "NO", _notes(r)]
        for r in results["scenarios"]
    ]  # fmt: skip
    head = ["scenario", "writes", "max", "p99", "median", "not converged", "failed reads", "max <= 1 s", "chaos"]
    return report.markdown_table(head, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short form (as make test runs it)")
    parser.add_argument("--servers", type=int, default=4, help="server processes: one writer, the rest read")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    results = run(SHORT if args.short else LONG, servers=args.servers)
    results["form"] = "short" if args.short else "long"
    report.stamp(results)
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if not any(shortfalls(row) for row in results["scenarios"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
