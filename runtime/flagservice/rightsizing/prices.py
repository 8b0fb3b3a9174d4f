"""The price table (prices.json): list prices per node-hour and memory per node type, and the family ladder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")


class UnknownNodeTypeError(LookupError):
    """The node type (or its engine's price) is not in the price table."""


@dataclass(frozen=True)
class NodeType:
    name: str
    memory_gib: float
    usd_per_hour: float

    @property
    def family(self) -> str:
        """`cache.t4g.small` -> `t4g`: node types of one family differ only in size."""
        return self.name.split(".")[1]


@dataclass(frozen=True)
class PriceTable:
    date: str
    region: str
    source: str
    hours_per_month: int
    engine: str
    node_types: dict[str, NodeType]

    def node(self, name: str) -> NodeType:
        try:
            return self.node_types[name]
        except KeyError:
            raise UnknownNodeTypeError(f"{name} ({self.engine}) is not in the price table of {self.date}") from None

    def monthly_usd(self, name: str, nodes: int) -> float:
        """List price of `nodes` nodes of this type for an average month (hoursPerMonth hours)."""
        return round(self.node(name).usd_per_hour * self.hours_per_month * nodes, 2)

    def neighbour(self, name: str, step: int) -> NodeType | None:
        """The next larger (`step` 1) or smaller (-1) node type of the same family by memory; None at the end."""
        current = self.node(name)
        ladder = sorted((n for n in self.node_types.values() if n.family == current.family), key=lambda n: n.memory_gib)
        index = ladder.index(current) + step
        return ladder[index] if 0 <= index < len(ladder) else None

    def describe(self) -> dict[str, str]:
        return {"date": self.date, "region": self.region, "source": self.source}


def load_prices(engine: str, path: Path = PRICES_FILE) -> PriceTable:
    """The table for one engine (`valkey` or `redis`); node types without a price for it are left out."""
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    nodes = {
        name: NodeType(name, float(entry["memoryGib"]), float(entry["usdPerHour"][engine]))
        for name, entry in document["nodeTypes"].items()
        if engine in entry["usdPerHour"]
    }
    return PriceTable(document["date"], document["region"], document["source"], int(document["hoursPerMonth"]),
                      engine, nodes)  # fmt: skip
