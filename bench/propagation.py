"""Issue 7, item 4 (and issue 12): how long after a write's 2xx does every container stop serving the older version?

Several writers at once (`Plan.writers` threads, each through its own server process: one container
each) PATCH their own flag, a new version each time; every other server is read open loop on every
read path (readers.py: single, OFREP single, bulk, conditional bulk), each path at `Plan.rate`
requests per second on a fixed schedule; all share one Redis and one PostgreSQL (cluster.py). For
each acknowledged write, the delay until every reader of every path stopped returning an older
version is defined in measure.py. Reported per scenario as max, p99 and median, the worst delay per
path, against DESIGN.md's target of 1 s (the contract's bound is 5 s), and the readers' latency
measured from each request's due time.

Scenarios:
- normal: nothing goes wrong.
- clients-killed: `CLIENT KILL TYPE normal` every ~100 ms kills every connection the servers hold to
  Redis. The service uses no pub/sub and no client tracking (no "notification" connection exists),
  so what is killed is the data connections that carry the revision checks themselves.
- reader-frozen: one reader's server is SIGSTOPped while writes go on, then thawed (Lambda freezes
  idle containers); its reads after the thaw are measured from the thaw.
- redis-flushed: FLUSHALL every ~600 ms behind the servers' backs while writes go on.

`make bench-propagation` runs the long form, then the out-of-order commit rounds (ordering.py),
prints the tables, writes bench/results/propagation.json and ordering.json and regenerates the
README's Consistency section; `make test` runs the short forms (tests/integration/test_propagation.py
asserts a worst case of 2 s: the target, 2x margin; tests/integration/test_ordering.py).
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

from bench import ordering, report
from bench.cluster import Cluster, ClusterOptions, FlagServer, running_cluster
from bench.load import Read, Repeat, Write, read_flag, write_flag
from bench.measure import Window, summary, write_delay
from bench.readers import PATHS, PathReader, readers_for, reply_summary, run_readers

TARGET_SECONDS = 1.0
RESULTS = Path(__file__).resolve().parent / "results" / "propagation.json"


@dataclass(frozen=True)
class Plan:
    writes: int  # per writer and scenario
    writers: int  # concurrent writers, each through its own server process, each writing its own flag
    gap: tuple[float, float]  # seconds between writes, drawn uniformly (never in step with the 250 ms checks)
    warmup: float
    tail: float  # reading on after the last write, so every reader is seen to converge
    rate: float  # requests per second on each read path of each reader, open loop
    freeze: float  # seconds a frozen reader stays frozen
    freezes: int  # how many times it is frozen during the writes
    kill_every: float = 0.1
    flush_every: float = 0.6


SHORT = Plan(writes=8, writers=2, gap=(0.15, 0.35), warmup=0.5, tail=1.5, rate=20.0, freeze=1.2, freezes=1)
LONG = Plan(writes=100, writers=3, gap=(0.1, 0.4), warmup=1.0, tail=2.5, rate=40.0, freeze=2.0, freezes=6)


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


def writer_servers(cluster: Cluster, count: int) -> list[FlagServer]:
    """Server 0, then the last ones: never server 1, the one reader-frozen freezes."""
    order = [0, *range(len(cluster.servers) - 1, 1, -1)]
    return [cluster.servers[i] for i in order[:count]]


def _write_series(server: FlagServer, key: str, plan: Plan, rng: random.Random, out: list[Write]) -> None:
    for i in range(plan.writes):
        out.append(write_flag(server, "PATCH", key, {"description": f"write {i}"}))
        time.sleep(rng.uniform(*plan.gap))


def _concurrent_writes(ctx: Context, keys: list[str], rng: random.Random) -> list[Write]:
    """Every writer's series at once, each through its own server (its own container)."""
    results: list[list[Write]] = [[] for _ in keys]
    servers = writer_servers(ctx.cluster, len(keys))
    threads = [threading.Thread(target=_write_series, args=(servers[i], key, ctx.plan, random.Random(rng.random()),
                                                            results[i]), name=f"writer-{i}")
               for i, key in enumerate(keys)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return sorted((write for series in results for write in series), key=lambda write: write.end)


def run_scenario(cluster: Cluster, scenario: Scenario, plan: Plan, rng: random.Random) -> dict[str, Any]:
    """Create the scenario's flags, start the readers, write under the scenario's chaos, read on, measure."""
    keys = [f"propagation-{scenario.name}-{i}" for i in range(plan.writers)]
    for key in keys:
        created = write_flag(cluster.servers[0], "POST", key, {"key": key, "enabled": True})
        if not created.acked:
            raise RuntimeError(f"could not create {key}: HTTP {created.status}")
    readers = readers_for(cluster.servers[1:], keys, plan.rate)
    loop = run_readers(readers)
    time.sleep(plan.warmup)
    ctx = Context(cluster, plan)
    try:
        with scenario.chaos(ctx):
            writes = _concurrent_writes(ctx, keys, rng)
        time.sleep(plan.tail)
    finally:
        loop.stop()
    return _result(scenario, writes, readers, ctx) | {"generator_lag_s": loop.lag_summary()}


def _delays(acked: list[Write], readers: list[PathReader], ctx: Context) -> list[float | None]:
    """Each write's delay over these readers (ids: server/path; a frozen server's windows apply to all its paths)."""
    by_id = {f"{r.server.index}/{r.path}": [read for read in r.reads if read.key != "*"] for r in readers}
    windows = {f"{r.server.index}/{r.path}": ctx.windows.get(r.server.index, []) for r in readers}
    own: dict[str, dict[str, list[Read]]] = {}
    for write in acked:
        own.setdefault(write.key, {rid: [read for read in reads if read.key == write.key]
                                   for rid, reads in by_id.items()})  # fmt: skip
    return [write_delay(write, own[write.key], windows) for write in acked]


def _result(scenario: Scenario, writes: list[Write], readers: list[PathReader], ctx: Context) -> dict[str, Any]:
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
    """Every scenario on one cluster (writers through their own servers, servers - 1 readers)."""
    rng = random.Random(7)
    with running_cluster(ClusterOptions(servers=servers, flags_env="propagation")) as cluster:
        results = [run_scenario(cluster, scenario, plan, rng) for scenario in scenarios]
        machine = report.machine(cluster)
    return {
        "kind": "propagation",
        "target_seconds": TARGET_SECONDS,
        "readers": servers - 1,
        "paths": list(PATHS),
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
         " / ".join(report.seconds(r["delay_by_path_s"][path]["max"]) for path in PATHS),
         r["not_converged"], f"{r['failed_reads']} / {r['reads']}",
         " / ".join(report.seconds(r["read_latency_s"][k]) for k in ("p50", "p99", "max")),
         "yes" if r["within_target"] else "NO", _notes(r)]
        for r in results["scenarios"]
    ]  # fmt: skip
    head = ["scenario", "writes", "max", "p99", "median", "max by path: " + " / ".join(PATHS), "not converged",
            "failed reads", "read latency p50 / p99 / max", "max <= 1 s", "chaos"]  # fmt: skip
    return report.markdown_table(head, rows)


def _ordering(short: bool, out: Path) -> bool:
    """The out-of-order commit rounds (ordering.py) after the scenarios; True if every bar was met."""
    results = ordering.run(ordering.SHORT if short else ordering.LONG)
    results["form"] = "short" if short else "long"
    report.stamp(results)
    print(ordering.summary_table(results) + "\n\n" + ordering.table(results))
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return not any(ordering.shortfalls(point) for point in results["points"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short form (as make test runs it)")
    parser.add_argument("--servers", type=int, default=4, help="server processes (1 to n-1 are read)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--no-ordering", action="store_true", help="skip the out-of-order commit rounds")
    args = parser.parse_args(argv)
    results = run(SHORT if args.short else LONG, servers=args.servers)
    results["form"] = "short" if args.short else "long"
    report.stamp(results)
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    met = not any(shortfalls(row) for row in results["scenarios"])
    if not args.no_ordering:
        met = _ordering(args.short, args.out.parent / ordering.RESULTS.name) and met
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
