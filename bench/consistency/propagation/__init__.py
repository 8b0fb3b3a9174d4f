"""Issue 7, item 4 (and issue 12): how long after a write's 2xx does every container stop serving the older version?

Several writers at once (`Plan.writers` threads, each through its own server process: one container
each) PATCH their own flag, a new version each time; every other server is read open loop on every
read path (common/readers.py: single, OFREP single, bulk, conditional bulk), each path at `Plan.rate`
requests per second on a fixed schedule; all share one Redis and one PostgreSQL (common/cluster.py). For
each acknowledged write, the delay until every reader of every path stopped returning an older
version is defined in common/measure.py. Reported per scenario as max, p99 and median, the worst delay per
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

`make bench-propagation` runs the long form, then the out-of-order commit rounds (ordering/),
prints the tables, writes bench/results/propagation.json and ordering.json and regenerates the
README's Consistency section; `make test` runs the short forms (tests/integration/test_propagation.py
asserts a worst case of 2 s: the target, 2x margin; tests/integration/test_ordering.py).

Modules: plan.py (the plans), scenarios.py (the chaos of each scenario), writes.py (the concurrent writers),
outcome.py (each scenario's delays and counts), runner.py (the scenarios on one cluster), tables.py (bars and
table), __main__.py (CLI, then the ordering rounds).
"""

from bench.consistency.propagation.outcome import scenario_result
from bench.consistency.propagation.plan import LONG, RESULTS, SHORT, TARGET_SECONDS, Context, Plan
from bench.consistency.propagation.runner import run, run_scenario
from bench.consistency.propagation.scenarios import SCENARIOS, Scenario
from bench.consistency.propagation.tables import shortfalls, table
from bench.consistency.propagation.writes import writer_servers

__all__ = [
    "LONG", "RESULTS", "SCENARIOS", "SHORT", "TARGET_SECONDS", "Context", "Plan", "Scenario", "run", "run_scenario",
    "scenario_result", "shortfalls", "table", "writer_servers",
]  # fmt: skip
