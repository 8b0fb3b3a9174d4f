"""The plans of the propagation harness, its target, and the context a scenario's chaos reports into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.common.cluster import Cluster
from bench.common.measure import Window
from bench.common.results import results_file

TARGET_SECONDS = 1.0
RESULTS = results_file("propagation")


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
