"""One round: two writes, the first held at a hold point of dbhold.py, the second racing it."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.common.cluster import Cluster
from bench.common.load import Write, write_flag
from bench.consistency.dbhold import HOLD_CAP, Hold, install
from bench.consistency.ordering.plan import ENGAGE_TIMEOUT, FILLERS, HELD, IF_MATCH, IF_MATCH_CAP, KILL_SWITCH, Plan


@dataclass
class Race:
    """Two writes, the first held at `point`; times are time.monotonic()."""

    point: str
    first: Write
    second: Write
    engaged: float | None
    released: float
    second_answered_while_held: bool


@dataclass
class Round:
    race: Race
    start: float
    end: float = 0.0
    resets: list[Write] = field(default_factory=list)


def _seed(cluster: Cluster) -> None:
    for key in (HELD, KILL_SWITCH, IF_MATCH, *FILLERS):
        if not write_flag(cluster.servers[0], "POST", key, {"key": key, "enabled": True}).acked:
            raise RuntimeError(f"could not create {key}")


def race(
    hold: Hold, point: str, first: Callable[[], Write], second: Callable[[], Write], *, linger: float, cap: float
) -> Race:
    """Run `first` (a callable returning a Write) held at `point`, then `second`; let `first` go after
    `second` answered plus `linger`, or `cap` seconds after the hold engaged, whichever comes first."""
    with ThreadPoolExecutor(2) as pool:
        held: Future[Write] = pool.submit(first)
        engaged = hold.engaged(ENGAGE_TIMEOUT)
        other = pool.submit(second)
        deadline = (engaged or time.monotonic()) + cap
        try:
            other.result(timeout=max(0.0, deadline - time.monotonic()))
            time.sleep(max(0.0, min(linger, deadline - time.monotonic())))
        except TimeoutError:
            pass
        answered_while_held = other.done()
        hold.release()
        released = time.monotonic()
        return Race(point, held.result(), other.result(), engaged, released, answered_while_held)


def commit_order_round(cluster: Cluster, hold: Hold, point: str, plan: Plan) -> Round:
    servers = cluster.servers
    start = time.monotonic()
    resets = [write_flag(servers[0], "PATCH", key, {"enabled": True}) for key in (HELD, KILL_SWITCH)]
    time.sleep(plan.settle)
    hold.arm(point, HELD)
    done = race(hold, point, lambda: write_flag(servers[0], "PATCH", HELD, {"enabled": False}),
                lambda: write_flag(servers[1], "PATCH", KILL_SWITCH, {"enabled": False}),
                linger=plan.linger, cap=HOLD_CAP)  # fmt: skip
    time.sleep(plan.observe)
    return Round(done, start, time.monotonic(), resets)


def _stored(cluster: Cluster, key: str) -> dict[str, Any]:
    rows = cluster.sql("SELECT version, definition FROM flags WHERE key = %s", (key,))
    return {"version": int(rows[0][0]), **(rows[0][1] or {})} if rows else {}


def if_match_round(cluster: Cluster, hold: Hold, point: str, number: int) -> dict[str, Any]:
    """`If-Match: *` description PATCH held at `point`, racing a kill switch; what PostgreSQL holds after."""
    servers = cluster.servers
    write_flag(servers[0], "PATCH", IF_MATCH, {"enabled": True})
    hold.arm(point, IF_MATCH)
    star = {"If-Match": "*"}
    done = race(hold, point,
                lambda: write_flag(servers[0], "PATCH", IF_MATCH, {"description": f"round {number}"}, headers=star),
                lambda: write_flag(servers[1], "PATCH", IF_MATCH, {"enabled": False}),
                linger=0.0, cap=IF_MATCH_CAP)  # fmt: skip
    stored = _stored(cluster, IF_MATCH)
    return {
        "point": point, "engaged": done.engaged is not None,
        "star_status": done.first.status, "kill_switch_status": done.second.status,
        "stored_enabled": stored.get("enabled"), "stored_description": stored.get("description"),
        "reverted": done.second.acked and stored.get("enabled") is not False,
    }  # fmt: skip


def prepare(cluster: Cluster) -> None:
    """The triggers in the cluster's database, and the flags the rounds write and read."""
    install(cluster.postgres.url)
    _seed(cluster)
