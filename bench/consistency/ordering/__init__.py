"""Issue 12: two writers whose commits are forced out of number order at the database, every read path watched.

Five local servers (one container each) share Redis and PostgreSQL: two take the writes, and
readers on every path (common/readers.py: single, OFREP single, bulk, conditional bulk) read the other three
open loop. A round,
at a hold point of dbhold.py (`commit` or `early`):

1. both race flags are set enabled again, and the readers see it (`settle`);
2. writer 1 (through server 0) PATCHes flag A `{"enabled": false}` and is held at the hold point
   (at `commit` its revision is already taken);
3. writer 2 (through server 1) PATCHes the kill switch, flag B `{"enabled": false}`;
4. once writer 2 is answered, the hold lasts `linger` more (readers see B's change alone), never
   longer than `HOLD_CAP` in all; then the harness lets writer 1 go, and it commits later;
5. the readers read on for `observe` seconds, past CACHE_TTL_SECONDS (4 s here), so a bulk snapshot
   rebuilt at an unchanged revision shows up as one ETag naming two different flag lists.

Asserted per round, for both writes (each is a kill switch): no read of any path that started more
than `grace` (1 s; tests 2 s) after the write's 2xx shows an older version, that is the flag still
enabled; and over the whole run, no ETag names two different flag lists (no 304 for changed content).

If-Match rounds: writer 1 PATCHes flag C's description with `If-Match: *` and is held (at the same
hold point); writer 2 PATCHes C `{"enabled": false}`; the hold ends when writer 2 is answered (at most
`IF_MATCH_CAP`). PostgreSQL must then hold `enabled: false` whenever the kill switch got its 2xx.

`python -m bench.consistency.ordering` (and `make bench-propagation`) runs the long form and writes
bench/results/ordering.json; tests/integration/test_ordering.py runs the short form.

Modules: plan.py (the plans and the flags they race), races.py (one round and its hold), verdicts.py (what the
readers saw), runner.py (rounds per hold point on one cluster), tables.py (bars and tables), __main__.py (CLI).
"""

from bench.consistency.ordering.plan import LONG, OPTIONS, RESULTS, SHORT, TTL_SECONDS, Plan
from bench.consistency.ordering.races import Race, Round, if_match_round, prepare, race
from bench.consistency.ordering.runner import commit_order, if_match_rounds, run, run_point
from bench.consistency.ordering.tables import (
    if_match_shortfalls,
    order_shortfalls,
    shortfalls,
    summary_table,
    table,
)

__all__ = [
    "LONG", "OPTIONS", "RESULTS", "SHORT", "TTL_SECONDS", "Plan", "Race", "Round", "commit_order", "if_match_round",
    "if_match_rounds", "if_match_shortfalls", "order_shortfalls", "prepare", "race", "run", "run_point",
    "shortfalls", "summary_table", "table",
]  # fmt: skip
