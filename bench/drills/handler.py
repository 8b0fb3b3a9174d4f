"""The real Lambda handler plus one drill seam, served only by `make drill`'s servers (DEV_HANDLER).

Why a seam: a worker serves one request at a time and a request holds at most one Redis connection
at a time, so no amount of load exhausts a container's pool; exhaustion comes from connections that
leak or hang in a blocked command. `POST /__drill/redis-pool/hold` reproduces that inside the worker:
it checks out every connection of the service's own pool (REDIS_MAX_CONNECTIONS of them, until the
pool says "No connection available") and keeps them; `POST /__drill/redis-pool/release` gives them
back. Every other request goes to the real handler unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from flagservice import wiring
from flagservice.handler import lambda_handler as service_handler
from flagservice.handler import warm

__all__ = ["lambda_handler", "warm"]
HOLD = "/__drill/redis-pool/hold"
RELEASE = "/__drill/redis-pool/release"
HOLD_ATTEMPTS = 100
_held: list[Any] = []


def _pool() -> redis.ConnectionPool:
    cache = wiring.get_service().reads.cache
    return cache._client.connection_pool  # type: ignore[union-attr]  # noqa: SLF001 - the drill's seam


def _hold() -> int:
    """Take every slot of the pool. A new connection that missed its connect or handshake timeout (a busy machine:
    100 ms, 50 ms) raised and gave its slot back to the pool: taken again, until the pool has no slot left."""
    pool = _pool()
    for _ in range(HOLD_ATTEMPTS):
        try:
            _held.append(pool.get_connection())
        except (redis.ConnectionError, redis.TimeoutError):
            if pool.pool.empty():  # "No connection available": every slot is held
                return len(_held)
    raise RuntimeError(f"the pool kept failing to connect: {len(_held)} connections held")


def _release() -> int:
    pool, count = _pool(), len(_held)
    while _held:
        pool.release(_held.pop())
    return count


def lambda_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    seam = {HOLD: _hold, RELEASE: _release}.get(event.get("path", ""))
    if seam is None or event.get("httpMethod") != "POST":
        return service_handler(event, context)
    body = json.dumps({"connections": seam()})
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body}
