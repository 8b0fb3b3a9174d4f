"""Every scenario on one cluster: flags created, readers started, writes under the scenario's chaos, measured."""

from __future__ import annotations

import random
import time
from typing import Any

from bench.common import report
from bench.common.cluster import Cluster, ClusterOptions, running_cluster
from bench.common.load import write_flag
from bench.common.readers import PATHS, readers_for, run_readers
from bench.consistency.propagation.outcome import scenario_result
from bench.consistency.propagation.plan import TARGET_SECONDS, Context, Plan
from bench.consistency.propagation.scenarios import SCENARIOS, Scenario
from bench.consistency.propagation.writes import concurrent_writes


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
            writes = concurrent_writes(ctx, keys, rng)
        time.sleep(plan.tail)
    finally:
        loop.stop()
    return scenario_result(scenario, writes, readers, ctx) | {"generator_lag_s": loop.lag_summary()}


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
