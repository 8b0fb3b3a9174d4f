"""The plans (full and quick), the bars against DESIGN.md and where the results go."""

from __future__ import annotations

from dataclasses import dataclass

from bench.common.results import results_file
from bench.http import local_server

RESULTS = results_file("peer")
FLAG_KEY = local_server.FLAG_KEY
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
