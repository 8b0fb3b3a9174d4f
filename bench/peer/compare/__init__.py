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

Modules: plan.py (plans, bars, results file), unleash.py (the peer: start, flag, route, stop), measure.py (the
loads, the ratios, py-spy), runner.py (one run on both servers), tables.py (markdown), __main__.py (CLI).
"""

from bench.peer.compare.measure import measure, profile_ours, ratios
from bench.peer.compare.plan import FLAG_KEY, FULL, P50_BAR, QUICK, RESULTS, RPS_BAR, PeerPlan
from bench.peer.compare.runner import run
from bench.peer.compare.tables import tables
from bench.peer.compare.unleash import (
    ADMIN_TOKEN,
    FRONTEND_TOKEN,
    UNLEASH_DIR,
    Unleash,
    create_unleash_flag,
    running_unleash,
    start_unleash,
    unleash_target,
    wait_flag_visible,
)

__all__ = [
    "ADMIN_TOKEN", "FLAG_KEY", "FRONTEND_TOKEN", "FULL", "P50_BAR", "QUICK", "RESULTS", "RPS_BAR", "UNLEASH_DIR",
    "PeerPlan", "Unleash", "create_unleash_flag", "measure", "profile_ours", "ratios", "run", "running_unleash",
    "start_unleash", "tables", "unleash_target", "wait_flag_visible",
]  # fmt: skip
