"""Every acknowledged write is served by every container within the 1 s target (asserted at 2 s: a 2x margin).

The short form of bench/consistency/propagation/ (issue 7, item 4): local server processes (WORKERS=1 each: one
Lambda container each) share one Redis and one PostgreSQL; one writes a flag, the others read it in
loops; the delay of each write is defined in bench/common/measure.py. One test per scenario, on one cluster.
`make bench-propagation` runs the long form and prints max, p99 and median against the target.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from bench.common.cluster import Cluster, ClusterOptions, running_cluster
from bench.consistency import propagation

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]
BOUND = 2 * propagation.TARGET_SECONDS
RNG = random.Random(7)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(ClusterOptions(servers=4, flags_env="propagation")) as running:
        yield running


@pytest.mark.parametrize("scenario", propagation.SCENARIOS, ids=lambda scenario: scenario.name)
def test_every_reader_serves_each_acknowledged_write_within_twice_the_target(
    cluster: Cluster, scenario: propagation.Scenario
) -> None:
    row = propagation.run_scenario(cluster, scenario, propagation.SHORT, RNG)

    print(scenario.name, row["delay_s"], row["answers"])
    assert propagation.shortfalls(row, bound=BOUND) == [], row
