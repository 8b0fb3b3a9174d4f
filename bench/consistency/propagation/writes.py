"""The writers: each PATCHes its own flag through its own server (its own container), all at once."""

from __future__ import annotations

import random
import threading
import time

from bench.common.cluster import Cluster, FlagServer
from bench.common.load import Write, write_flag
from bench.consistency.propagation.plan import Context, Plan


def writer_servers(cluster: Cluster, count: int) -> list[FlagServer]:
    """Server 0, then the last ones: never server 1, the one reader-frozen freezes."""
    order = [0, *range(len(cluster.servers) - 1, 1, -1)]
    return [cluster.servers[i] for i in order[:count]]


def _write_series(server: FlagServer, key: str, plan: Plan, rng: random.Random, out: list[Write]) -> None:
    for i in range(plan.writes):
        out.append(write_flag(server, "PATCH", key, {"description": f"write {i}"}))
        time.sleep(rng.uniform(*plan.gap))


def concurrent_writes(ctx: Context, keys: list[str], rng: random.Random) -> list[Write]:
    """Every writer's series at once, each through its own server (its own container)."""
    results: list[list[Write]] = [[] for _ in keys]
    servers = writer_servers(ctx.cluster, len(keys))
    threads = [threading.Thread(target=_write_series, args=(servers[i], key, ctx.plan, random.Random(rng.random()),
                                                            results[i]), name=f"writer-{i}")
               for i, key in enumerate(keys)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return sorted((write for series in results for write in series), key=lambda write: write.end)
