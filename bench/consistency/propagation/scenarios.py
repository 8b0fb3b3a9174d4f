"""The scenarios: what goes wrong (Redis connections killed, a reader frozen, Redis flushed) while writes run."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from bench.common.load import Repeat
from bench.consistency.propagation.plan import Context


@contextlib.contextmanager
def nothing(ctx: Context) -> Iterator[None]:
    yield


@contextlib.contextmanager
def clients_killed(ctx: Context) -> Iterator[None]:
    admin = ctx.cluster.redis_admin()
    with Repeat(ctx.plan.kill_every, lambda: admin.client_kill_filter(_type="normal", skipme=True)) as killer:
        yield
    ctx.notes.update(kill_rounds=len(killer.results), connections_killed=sum(killer.results))


@contextlib.contextmanager
def redis_flushed(ctx: Context) -> Iterator[None]:
    admin = ctx.cluster.redis_admin()
    with Repeat(ctx.plan.flush_every, admin.flushall) as flusher:
        yield
    ctx.notes.update(flushes=len(flusher.results))


@contextlib.contextmanager
def reader_frozen(ctx: Context) -> Iterator[None]:
    """Freeze the first reader `plan.freezes` times while the writes run, each time for `plan.freeze` seconds."""
    server, stop = ctx.cluster.servers[1], threading.Event()
    windows = ctx.windows.setdefault(server.index, [])

    def freezer() -> None:
        for _ in range(ctx.plan.freezes):
            if stop.wait(ctx.plan.freeze / 2):
                return
            frozen_at = time.monotonic()
            server.freeze()
            stop.wait(ctx.plan.freeze)
            server.thaw()
            windows.append((frozen_at, time.monotonic()))
            stop.wait(ctx.plan.freeze)

    thread = threading.Thread(target=freezer, name="freezer", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
        server.thaw()
    ctx.notes.update(freezes=len(windows), frozen_seconds=round(sum(b - a for a, b in windows), 3))


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    chaos: Callable[[Context], AbstractContextManager[None]]


SCENARIOS = (
    Scenario("normal", "normal", nothing),
    Scenario("clients-killed", "Redis connections killed every 100 ms (CLIENT KILL TYPE normal)", clients_killed),
    Scenario("reader-frozen", "a reader frozen (SIGSTOP) during writes, then thawed", reader_frozen),
    Scenario("redis-flushed", "Redis flushed (FLUSHALL) every 600 ms during writes", redis_flushed),
)
