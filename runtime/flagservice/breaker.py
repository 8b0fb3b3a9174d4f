"""A circuit breaker: after a few consecutive failures nothing waits on the guarded store for a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed → open after `threshold` consecutive failures → one probe after `cooldown` seconds.

    One process serves one request at a time, so "one probe" is simply the first call allowed
    after the cooldown: it closes the breaker on success and re-opens it on failure.
    """

    def __init__(self, *, threshold: int = 3, cooldown: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def closed(self) -> bool:
        return self._opened_at is None

    def allow(self) -> bool:
        """May a call go to the store now? False while open (callers fall back without waiting)."""
        return self.state is not BreakerState.OPEN

    def record_success(self) -> bool:
        """Count a success; True when this success closed an open breaker (the store came back)."""
        recovered = self._opened_at is not None
        self._failures = 0
        self._opened_at = None
        return recovered

    def record_failure(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.threshold:
            self._opened_at = self._clock()
