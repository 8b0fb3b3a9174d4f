"""The right-sizing rule: hourly series of every node in, one recommendation out (pure, no I/O).

"Sustained", precisely (every threshold below is a constant of this module):
- memory: per node, the 95th percentile (nearest rank) of the hourly *Maximum* of
  DatabaseMemoryUsagePercentage over the window; the group's figure is its highest node's. p95 above
  80 % means more than 5 % of the hours with data peaked above 80 % (on 90 days: at least 109 of
  2,160 hours); below 20 % means at least 95 % of the hours never reached 20 %. Exactly 80 or 20 keeps.
- evictions: the hours in which any node evicted at least one key (hourly Sum > 0). At least
  EVICTION_HOURS of them force an upsize whatever the memory says: evicting means the node is full.
  Fewer (one flush, one batch job) are reported and do not count.
- enough data: a node's memory p95 counts only with at least MIN_HOURS hourly points (14 days); with
  none such, the rule keeps the node type ("insufficient data"), unless evictions force an upsize.
- a downsize must fit: the p95 scaled to the smaller node's memory must stay at or below 80 %, or the
  next run would upsize again; otherwise keep.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from flagservice.rightsizing.prices import PriceTable, UnknownNodeTypeError

UPSIZE_ABOVE = 80.0
DOWNSIZE_BELOW = 20.0
EVICTION_HOURS = 6
MIN_HOURS = 14 * 24
PERCENTILE = 95.0

THRESHOLDS: dict[str, float] = {"upsizeAbovePercent": UPSIZE_ABOVE, "downsizeBelowPercent": DOWNSIZE_BELOW,
              "evictionHours": EVICTION_HOURS, "minHours": MIN_HOURS, "percentile": PERCENTILE}  # fmt: skip


# metric name -> node id -> hourly values (one per hour with data, any order)
Series = Mapping[str, Mapping[str, Sequence[float]]]
Action = Literal["upsize", "downsize", "keep"]


def percentile(values: Sequence[float], rank: float = PERCENTILE) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `rank` % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(rank / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Evidence:
    """The numbers that decided, and the ones a human wants beside them (p95 of hourly values, worst node)."""

    memory_p95_percent: float | None
    memory_p95_node: str | None
    memory_hours: int  # hourly memory points of the node with the most data
    eviction_hours: int
    evictions_total: float
    engine_cpu_p95_percent: float | None
    cpu_p95_percent: float | None
    connections_p95: float | None
    network_in_p95_bytes_per_hour: float | None
    network_out_p95_bytes_per_hour: float | None


@dataclass(frozen=True)
class Recommendation:
    action: Action
    node_type_now: str
    node_type_recommended: str
    reason: str
    nodes: int
    monthly_usd_now: float | None
    monthly_usd_recommended: float | None
    evidence: Evidence
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    prices: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _worst_p95(per_node: Mapping[str, Sequence[float]], min_points: int = 1) -> tuple[float | None, str | None]:
    """The highest per-node p95 among nodes with at least `min_points` values, and that node."""
    found = [(p, node) for node, values in per_node.items() if len(values) >= min_points
             for p in [percentile(values)] if p is not None]  # fmt: skip
    return max(found) if found else (None, None)


def _eviction_hours(per_node: Mapping[str, Sequence[tuple[float, float]]]) -> int:
    """Distinct hours (timestamps) in which some node evicted: two nodes evicting in one hour count once."""
    return len({hour for points in per_node.values() for hour, value in points if value > 0})


def evidence(series: Series, evictions: Mapping[str, Sequence[tuple[float, float]]]) -> Evidence:
    """`series`: hourly values per metric and node; `evictions`: (hour, Sum) per node, to count distinct hours."""
    memory = series.get("memory", {})
    p95, node = _worst_p95(memory, MIN_HOURS)
    return Evidence(
        memory_p95_percent=p95, memory_p95_node=node,
        memory_hours=max((len(v) for v in memory.values()), default=0),
        eviction_hours=_eviction_hours(evictions),
        evictions_total=sum(v for points in evictions.values() for _, v in points),
        engine_cpu_p95_percent=_worst_p95(series.get("engine_cpu", {}))[0],
        cpu_p95_percent=_worst_p95(series.get("cpu", {}))[0],
        connections_p95=_worst_p95(series.get("connections", {}))[0],
        network_in_p95_bytes_per_hour=_worst_p95(series.get("network_in", {}))[0],
        network_out_p95_bytes_per_hour=_worst_p95(series.get("network_out", {}))[0],
    )  # fmt: skip


def _verdict(seen: Evidence) -> tuple[Action, str]:
    """What the numbers say, before asking the price table whether there is a node type to move to."""
    if seen.eviction_hours >= EVICTION_HOURS:
        return "upsize", f"keys were evicted in {seen.eviction_hours} hours (at least {EVICTION_HOURS} force an upsize)"
    if seen.memory_p95_percent is None:
        return "keep", f"insufficient data: {seen.memory_hours} hourly memory points, at least {MIN_HOURS} needed"
    p95 = seen.memory_p95_percent
    if p95 > UPSIZE_ABOVE:
        return "upsize", f"memory p95 {p95:.1f} % is above {UPSIZE_ABOVE:g} %"
    if p95 < DOWNSIZE_BELOW:
        return "downsize", f"memory p95 {p95:.1f} % is below {DOWNSIZE_BELOW:g} %"
    return "keep", f"memory p95 {p95:.1f} % is within {DOWNSIZE_BELOW:g} to {UPSIZE_ABOVE:g} %"


def _target(prices: PriceTable, node_type: str, action: Action, seen: Evidence) -> tuple[Action, str, str]:
    """The action after asking the price table, the node type to run, and what to add to the reason.

    At the end of a family an upsize stays an upsize (the node is too small: another family is the
    move, docs/operations.md) with the same node type; a downsize there, or one that would not fit, keeps.
    """
    if action == "keep":
        prices.node(node_type)  # an unknown node type is said, even when nothing would change
        return action, node_type, ""
    neighbour = prices.neighbour(node_type, 1 if action == "upsize" else -1)
    if neighbour is None:
        end = "largest" if action == "upsize" else "smallest"
        family = prices.node(node_type).family
        return (
            ("upsize" if action == "upsize" else "keep"),
            node_type,
            (f"; {node_type} is the {end} {family} node type in the price table"),
        )
    if action == "downsize" and seen.memory_p95_percent is not None:
        projected = seen.memory_p95_percent * prices.node(node_type).memory_gib / neighbour.memory_gib
        if projected > UPSIZE_ABOVE:
            return "keep", node_type, f"; on {neighbour.name} it would be {projected:.1f} %, above {UPSIZE_ABOVE:g} %"
    return action, neighbour.name, ""


def recommend(node_type: str, nodes: int, prices: PriceTable, seen: Evidence) -> Recommendation:
    """Apply the rule of this module's docstring; an unknown node type keeps, with no costs."""
    verdict, reason = _verdict(seen)
    try:
        action, chosen, note = _target(prices, node_type, verdict, seen)
        costs = prices.monthly_usd(node_type, nodes), prices.monthly_usd(chosen, nodes)
    except UnknownNodeTypeError as error:
        return Recommendation("keep", node_type, node_type, f"{reason}; cannot recommend: {error}", nodes, None, None,
                              seen, prices=prices.describe())  # fmt: skip
    return Recommendation(action, node_type, chosen, reason + note, nodes, *costs, seen, prices=prices.describe())
