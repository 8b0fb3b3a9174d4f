"""The primary holding the environment's slot dies in a Redis Cluster (issue 20): no read fails, the kill switch holds.

The short form of bench/drills/cluster_failover.py on clusters of its own: a Redis Cluster of 3 primaries
and 3 replicas, two servers in cluster mode, every read path read open loop. The slot's primary is
killed, the kill switch written during the outage (it must answer 200), the replica elected. Asserted:
no failed read; the kill switch served everywhere within 5 s of the cluster being healthy again; 80 %
HIT within 20 s of it and 80 % once warm (the bars with 2x margins; `make drill` reports the 1 s target).
"""

from __future__ import annotations

import pytest

from bench.drills import cluster_failover

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]


def test_a_kill_switch_written_while_the_slot_has_no_primary_is_served_everywhere_after_the_failover() -> None:
    row = cluster_failover.drill(cluster_failover.SHORT)

    print(cluster_failover.notes(row), row["visible_by_path_s"], row["latency_during_fault_s"])
    missed = cluster_failover.shortfalls(row, margin=2.0, latency=False)
    assert missed == [], "; ".join(missed)
