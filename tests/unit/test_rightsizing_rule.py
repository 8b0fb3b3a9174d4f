"""The right-sizing rule's edges (runtime/flagservice/rightsizing/rule.py) on series built here; the price table."""

from __future__ import annotations

import json

import pytest

from flagservice.rightsizing import prices as price_module
from flagservice.rightsizing.prices import load_prices
from flagservice.rightsizing.rule import (
    EVICTION_HOURS,
    MIN_HOURS,
    Evidence,
    evidence,
    percentile,
    recommend,
)

HOURS = 90 * 24
VALKEY = load_prices("valkey")


def memory_with(high_hours: int, high: float, low: float, hours: int = HOURS) -> list[float]:
    """`hours` hourly maxima, `high_hours` of them at `high` and the rest at `low` (order is irrelevant)."""
    return [high if i < high_hours else low for i in range(hours)]


def seen_from(memory: list[float], eviction_hours: int = 0, replica: list[float] | None = None) -> Evidence:
    series = {"memory": {"g-001": memory, **({"g-002": replica} if replica is not None else {})}}
    evictions = {"g-001": [(3600.0 * h, 5.0 if h < eviction_hours else 0.0) for h in range(len(memory))]}
    return evidence(series, evictions)


def test_nearest_rank_percentile() -> None:
    assert percentile([]) is None
    assert percentile([7.0]) == 7.0
    assert percentile([float(v) for v in range(1, 101)]) == 95.0
    assert percentile([float(v) for v in range(1, 21)]) == 19.0


@pytest.mark.parametrize(("high_hours", "action"), [(108, "keep"), (109, "upsize")])
def test_upsize_needs_more_than_five_percent_of_the_hours_above_80(high_hours: int, action: str) -> None:
    """On 2,160 hours, p95 is the 2,052nd value: 108 high hours leave it low, 109 move it above 80."""
    found = recommend("cache.t4g.small", 2, VALKEY, seen_from(memory_with(high_hours, 85.0, 50.0)))

    assert found.action == action
    assert found.node_type_recommended == ("cache.t4g.medium" if action == "upsize" else "cache.t4g.small")


@pytest.mark.parametrize(("p95", "action"), [(80.0, "keep"), (80.1, "upsize"), (20.0, "keep"), (19.9, "downsize")])
def test_the_thresholds_themselves_keep(p95: float, action: str) -> None:
    found = recommend("cache.t4g.medium", 1, VALKEY, seen_from([p95] * HOURS))

    assert found.action == action
    assert found.evidence.memory_p95_percent == p95


def test_the_worst_node_decides() -> None:
    found = recommend("cache.t4g.small", 2, VALKEY, seen_from([30.0] * HOURS, replica=[90.0] * HOURS))

    assert (found.action, found.evidence.memory_p95_node) == ("upsize", "g-002")


@pytest.mark.parametrize(("hours", "action"), [(EVICTION_HOURS - 1, "keep"), (EVICTION_HOURS, "upsize")])
def test_sustained_evictions_force_an_upsize_even_at_low_memory(hours: int, action: str) -> None:
    found = recommend("cache.t4g.small", 1, VALKEY, seen_from([40.0] * HOURS, eviction_hours=hours))

    assert found.action == action
    assert found.evidence.eviction_hours == hours


def test_eviction_hours_are_distinct_hours_across_nodes() -> None:
    both = {node: [(3600.0 * h, 1.0) for h in range(4)] for node in ("g-001", "g-002")}
    assert evidence({"memory": {}}, both).eviction_hours == 4


def test_too_few_hours_keep_unless_evictions_say_otherwise() -> None:
    young = [95.0] * (MIN_HOURS - 1)
    kept = recommend("cache.t4g.small", 1, VALKEY, seen_from(young))
    forced = recommend("cache.t4g.small", 1, VALKEY, seen_from(young, eviction_hours=EVICTION_HOURS))

    assert (kept.action, kept.node_type_recommended) == ("keep", "cache.t4g.small")
    assert "insufficient data" in kept.reason and kept.evidence.memory_p95_percent is None
    assert forced.action == "upsize"
    assert recommend("cache.t4g.small", 1, VALKEY, seen_from([95.0] * MIN_HOURS)).action == "upsize"


def test_a_downsize_that_would_not_fit_keeps() -> None:
    """cache.t4g.small (1.37 GiB) at 19 % would run at 52 % on a micro (0.5 GiB); m7g.xlarge -> large fits too."""
    assert recommend("cache.t4g.small", 1, VALKEY, seen_from([19.0] * HOURS)).node_type_recommended == "cache.t4g.micro"
    found = recommend("cache.t4g.medium", 1, VALKEY, seen_from([19.0] * HOURS))
    assert found.node_type_recommended == "cache.t4g.small"  # 19 % x 3.09 / 1.37 = 43 %

    table = price_module.PriceTable("d", "r", "s", 730, "valkey", {
        "cache.x1.big": price_module.NodeType("cache.x1.big", 10.0, 1.0),
        "cache.x1.tiny": price_module.NodeType("cache.x1.tiny", 1.0, 0.1),
    })  # fmt: skip
    squeezed = recommend("cache.x1.big", 1, table, seen_from([19.0] * HOURS))
    assert squeezed.action == "keep" and "190.0 %" in squeezed.reason


def test_the_ends_of_a_family() -> None:
    top = recommend("cache.t4g.medium", 2, VALKEY, seen_from([90.0] * HOURS))
    bottom = recommend("cache.t4g.micro", 1, VALKEY, seen_from([5.0] * HOURS))

    assert (top.action, top.node_type_recommended) == ("upsize", "cache.t4g.medium")
    assert "largest t4g" in top.reason
    assert (bottom.action, bottom.node_type_recommended) == ("keep", "cache.t4g.micro")


def test_costs_are_list_prices_for_every_node() -> None:
    found = recommend("cache.t4g.small", 2, VALKEY, seen_from([90.0] * HOURS))

    assert found.monthly_usd_now == round(0.0256 * 730 * 2, 2)
    assert found.monthly_usd_recommended == round(0.052 * 730 * 2, 2)
    assert found.prices["region"] and found.prices["date"] and found.prices["source"]


@pytest.mark.parametrize("memory", [[90.0] * HOURS, [50.0] * HOURS])
def test_an_unknown_node_type_keeps_and_says_why(memory: list[float]) -> None:
    found = recommend("cache.z9.huge", 1, VALKEY, seen_from(memory))

    assert (found.action, found.node_type_recommended) == ("keep", "cache.z9.huge")
    assert "not in the price table" in found.reason
    assert found.monthly_usd_now is None and found.monthly_usd_recommended is None


def test_the_price_table_states_its_date_region_and_source_and_every_family_is_ordered() -> None:
    document = json.loads(price_module.PRICES_FILE.read_text())
    assert {"date", "region", "source", "currency", "hoursPerMonth"} <= set(document)
    for engine in ("valkey", "redis"):
        table = load_prices(engine)
        assert set(table.node_types) == set(document["nodeTypes"])
        for node in table.node_types.values():
            bigger = table.neighbour(node.name, 1)
            assert bigger is None or (bigger.memory_gib > node.memory_gib and bigger.usd_per_hour > node.usd_per_hour)
