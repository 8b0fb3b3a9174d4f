"""What the fault proxy does to each chunk of bytes: pure decisions, no sockets (unit-tested on a fake clock).

A `Fault` is the proxy's current mode; a `Pacer` keeps, per connection and direction, what the mode
needs to remember (bytes forwarded since the mode was set, when the link is free again). The proxy
asks the pacer for a `Plan` for every chunk it reads and carries it out.

Directions: "up" is client to server (commands), "down" is server to client (replies).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

BANDWIDTH_SLICES_PER_SECOND = 20  # a limited link sends in small slices, not one burst per chunk


class Mode(StrEnum):
    PASS = "pass"  # forward untouched
    DELAY = "delay"  # each chunk leaves `delay_ms` after it arrived (latency, not a throughput limit)
    DROP = "drop"  # bytes vanish, connections stay open: a silent black hole (new connections too)
    RESET = "reset"  # every connection, open or new, is reset (RST)
    CLOSE_AFTER = "close_after"  # a connection closes after `close_after_bytes` more bytes were forwarded
    BANDWIDTH = "bandwidth"  # at most `bytes_per_second` per connection and direction
    # Bytes are held, connections stay open (new ones too); when the mode changes, everything held goes on
    # in order: a network black hole that TCP outlasts (retransmissions deliver what was sent into it).
    HOLD = "hold"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"


@dataclass(frozen=True)
class Fault:
    """One mode and its parameter; `direction` limits delay, drop, close-after and bandwidth to one way."""

    mode: Mode = Mode.PASS
    delay_ms: float = 0.0
    close_after_bytes: int = 0
    bytes_per_second: float = 0.0
    direction: Direction = Direction.BOTH

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.close_after_bytes < 0 or self.bytes_per_second < 0:
            raise ValueError("fault parameters cannot be negative")
        if self.mode is Mode.BANDWIDTH and self.bytes_per_second <= 0:
            raise ValueError("bandwidth needs bytes_per_second > 0")

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Fault:
        """From the control channel's JSON, e.g. {"mode": "delay", "delay_ms": 200, "direction": "down"}."""
        unknown = set(spec) - {"mode", "delay_ms", "close_after_bytes", "bytes_per_second", "direction"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(
            mode=Mode(spec.get("mode", "pass")),
            delay_ms=float(spec.get("delay_ms", 0)),
            close_after_bytes=int(spec.get("close_after_bytes", 0)),
            bytes_per_second=float(spec.get("bytes_per_second", 0)),
            direction=Direction(spec.get("direction", "both")),
        )

    def applies_to(self, direction: Direction) -> bool:
        return self.direction is Direction.BOTH or self.direction is direction


@dataclass(frozen=True)
class Plan:
    """What to do with one chunk: send `slices` (due time, byte count) in order, or drop it, or end the connection.

    `close` means: after sending the slices, close the connection cleanly (FIN); `reset` means abort it (RST).
    A slice due at infinity is held until the mode changes (HOLD).
    """

    slices: tuple[tuple[float, int], ...] = ()
    close: bool = False
    reset: bool = False

    @property
    def dropped(self) -> bool:
        return not self.slices and not self.close and not self.reset


@dataclass
class Pacer:
    """Per connection and direction: the state a mode needs across chunks, reset when the mode changes."""

    direction: Direction
    generation: int = -1
    forwarded: int = 0
    free_at: float = field(default=float("-inf"))

    def plan(self, fault: Fault, generation: int, size: int, now: float) -> Plan:
        """The plan for a chunk of `size` bytes read at `now`, under `fault` (set as number `generation`)."""
        if generation != self.generation:
            self.generation, self.forwarded, self.free_at = generation, 0, float("-inf")
        if fault.mode is Mode.RESET:
            return Plan(reset=True)
        if not fault.applies_to(self.direction) or fault.mode is Mode.PASS:
            return Plan(slices=((now, size),))
        if fault.mode is Mode.DROP:
            return Plan()
        if fault.mode is Mode.HOLD:
            return Plan(slices=((math.inf, size),))
        if fault.mode is Mode.DELAY:
            return Plan(slices=((now + fault.delay_ms / 1000, size),))
        if fault.mode is Mode.CLOSE_AFTER:
            return self._cut(fault.close_after_bytes, size, now)
        return self._paced(fault.bytes_per_second, size, now)

    def _cut(self, limit: int, size: int, now: float) -> Plan:
        """Forward up to `limit` bytes in total since the mode was set, then close (mid-reply if need be)."""
        allowed = min(size, max(0, limit - self.forwarded))
        self.forwarded += allowed
        slices = ((now, allowed),) if allowed else ()
        return Plan(slices=slices, close=self.forwarded >= limit)

    def _paced(self, rate: float, size: int, now: float) -> Plan:
        """Slices of 1/20 s worth of bytes, each due when the link would have finished sending it."""
        step = max(1, int(rate / BANDWIDTH_SLICES_PER_SECOND))
        slices = []
        start = max(now, self.free_at)
        for offset in range(0, size, step):
            count = min(step, size - offset)
            start += count / rate
            slices.append((start, count))
        self.free_at = start
        return Plan(slices=tuple(slices))
