"""The plans of the ordering rounds, the flags they race, and the cluster they run on."""

from __future__ import annotations

from dataclasses import dataclass

from bench.common.cluster import ClusterOptions
from bench.common.results import results_file

RESULTS = results_file("ordering")
HELD, KILL_SWITCH, IF_MATCH = "ordering-held", "ordering-kill-switch", "ordering-if-match"
FILLERS = tuple(f"ordering-filler-{i}" for i in range(6))
TTL_SECONDS = 4
# Servers 0 and 1 take the writes, 2 to 4 are read: a held write occupies its server's only worker (one
# container, one request at a time), which must not show up as reader latency.
OPTIONS = ClusterOptions(servers=5, flags_env="ordering", env=(("CACHE_TTL_SECONDS", str(TTL_SECONDS)),))
IF_MATCH_CAP = 0.8  # under the service's 1 s lock timeout: a kill switch queued behind the held row still commits
ENGAGE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Plan:
    rounds: int
    rate: float  # requests per second on each path of each server
    settle: float
    linger: float
    observe: float
    grace: float = 1.0


SHORT = Plan(rounds=3, rate=20.0, settle=1.0, linger=0.4, observe=TTL_SECONDS + 1.0, grace=2.0)
LONG = Plan(rounds=3, rate=40.0, settle=1.5, linger=0.5, observe=TTL_SECONDS + 2.0)
