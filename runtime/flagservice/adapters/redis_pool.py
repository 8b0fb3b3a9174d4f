"""A blocking connection pool that remembers its peak use, for the RedisPoolPeakInUse metric."""

from __future__ import annotations

from typing import Any

import redis


class PeakTrackingPool(redis.BlockingConnectionPool):
    """redis-py's BlockingConnectionPool, plus the most connections in use at once since `take_peak()`.

    A gauge read at the end of a request always sees 0 in use: every connection is back in the pool by
    then. The peak during the request is what shows a pool close to exhaustion, so the handler takes it
    once per request (telemetry.record_answer).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._peak = 0

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        connection = super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._peak = max(self._peak, self.in_use())
        return connection

    def in_use(self) -> int:
        return len(self._get_in_use_connections())  # type: ignore[no-untyped-call]

    def take_peak(self) -> int:
        """The peak since the last call; the next period starts from what is in use now."""
        peak, self._peak = self._peak, self.in_use()
        return peak
