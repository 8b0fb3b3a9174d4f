"""Issue 8: fault drills under load against the local server (several processes), with a table to show for it.

Each drill, on one shared cluster (common/cluster.py: 3 server processes, Redis behind the fault proxy,
PostgreSQL with pg_stat_statements): every server is read open loop, on a fixed schedule (the kill
switch every other read, the other flags in turn; common/readers.py), a background writer replaces flags
through server 0; after a baseline the fault of catalog.py is injected; part-way in, the kill
switch is flipped (PATCH {"enabled": ...}) through server 0; then the fault heals and the drill
waits for recovery.

Reported per drill:
- failed reads: answers other than 200 (or no answer), over the whole drill; every flag read is
  cached, so while either store answers this must be 0.
- latency p50/p99/max of reads due during the fault, from the time each was due (open loop: a
  stalled server cannot hide by receiving fewer requests), and p99 after its first second
  (DESIGN.md: "after the first second p99 < 250 ms").
- recovery: from the store being back (its restart answered, or the wire fault lifted) until the
  end of the last answer that was not a cache HIT, once every server has answered only HITs for
  `settle` seconds (for PostgreSQL: until the first acknowledged write). None if not within
  `recovery_cap` (20 s: DESIGN.md's 10 s with a 2x margin).
- kill switch: how long after its 2xx every server stopped serving the older version (common/measure.py);
  with PostgreSQL down, how fast it was refused (503) instead.
- acknowledged writes lost: writes answered 2xx whose version some server does not serve at the end.
- Redis commands per request (INFO commandstats, Lua's inner calls included) in the baseline and
  during the fault; database flag reads (pg_stat_statements) from the fault until recovery.

Five more drills run on clusters of their own, every read path of two servers read open loop, with the
same columns and bars of their own: a Redis failover to a replica that missed the last write
(failover.py), PostgreSQL silently unresponsive (blackhole.py), in a Redis Cluster the death of the
primary holding the environment's slot (cluster_failover.py), a blue/green move to a new Redis
(bluegreen.py) and an emptied cache warming up (warmup.py).

`make drill` runs the long forms, prints one table, writes bench/results/drills.json and regenerates
the README's Reliability section; `make test` runs the short forms (tests/integration/test_drills.py,
test_failover.py, test_postgres_blackhole.py, test_cluster_failover.py, test_bluegreen_move.py,
test_warmup.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common import report
from bench.common.cluster import ClusterOptions, running_cluster
from bench.common.results import results_file, write_results
from bench.drills import blackhole, bluegreen, cluster_failover, failover, warmup
from bench.drills.catalog import DRILLS
from bench.drills.runner import DrillPlan, Drills
from bench.drills.summary import shortfalls, table

__all__ = ["LONG", "OPTIONS", "SHORT", "DrillPlan", "Drills", "run", "shortfalls", "table"]
RESULTS = results_file("drills")
HANDLER = "bench.drills.handler.lambda_handler"
OPTIONS = ClusterOptions(servers=3, proxied_redis=True, counted_postgres=True, handler=HANDLER, flags_env="drill")

SHORT = DrillPlan(baseline=1.0, fault=2.5, flip_after=0.6, settle=1.0, recovery_cap=20.0, flags=10, rate=50.0,
                  write_every=0.5)  # fmt: skip
LONG = DrillPlan(baseline=3.0, fault=10.0, flip_after=2.0, settle=3.0, recovery_cap=20.0, flags=40, rate=100.0,
                 write_every=0.25)  # fmt: skip


def run(short: bool, *, only: tuple[str, ...] = ()) -> dict[str, Any]:
    """The shared-cluster drills in order, then the drills on clusters of their own."""
    plan = SHORT if short else LONG
    chosen = [drill for drill in DRILLS if not only or drill.name in only]
    with running_cluster(OPTIONS) as cluster:
        drills = Drills(cluster, plan)
        results = [drills.run(drill) for drill in chosen]
        machine = report.machine(cluster)
    own = {}
    for module in (failover, blackhole, cluster_failover, bluegreen, warmup):
        if not only or module.NAME in only:
            own[module.NAME] = module.SHORT if short else module.LONG
            results.append(module.drill(own[module.NAME]))
    return {"kind": "drills", "servers": OPTIONS.servers, "plan": vars(plan), "machine": machine, "drills": results,
            "own_cluster_plans": {name: vars(each) for name, each in own.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short forms (as make test runs them)")
    parser.add_argument("--only", nargs="*", default=[], help="drill names to run (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    results = run(args.short, only=tuple(args.only))
    print(table(results))
    write_results(results, args.out, form="short" if args.short else "long")
    return 0 if not any(shortfalls(row) for row in results["drills"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
