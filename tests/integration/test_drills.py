"""The bad days of DESIGN.md (Reliability), drilled under load against local server processes (issue 8).

The short forms of bench/drills/suite.py, one test per fault, in order on one cluster (3 servers, Redis
behind the fault proxy, PostgreSQL counting its statements). Each asserts the correctness bars with
DESIGN.md's 2x margin: no failed read while either store answers, recovery within 20 s, a kill switch
flipped during a Redis fault served everywhere within 2 s (with PostgreSQL down: refused with 503
within 4 s), no acknowledged write lost, no retry storm, no database stampede (at most one read per
flag per process). Latency goals are reported by `make drill`, never asserted here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.common.cluster import running_cluster
from bench.drills import suite
from bench.drills.catalog import DRILLS, Drill

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]
MARGIN = 2.0


@pytest.fixture(scope="module")
def drills() -> Iterator[suite.Drills]:
    with running_cluster(suite.OPTIONS) as cluster:
        yield suite.Drills(cluster, suite.SHORT)


@pytest.mark.parametrize("fault", DRILLS, ids=lambda fault: fault.name)
def test_the_service_rides_out_the_fault_and_recovers(drills: suite.Drills, fault: Drill) -> None:
    row = drills.run(fault)

    print(suite.table({"drills": [row]}))
    assert suite.shortfalls(row, margin=MARGIN, latency=False) == [], row
