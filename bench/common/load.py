"""What the harnesses observe: reads and writes with their times, and actions repeated in the background.

Readers run open loop (readers.py, on openloop.py). Times are `time.monotonic()`, which on Linux is
one clock for every process of the machine, so a read's start and end compare directly with a
write's acknowledgement and a fault's start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common.client import Answer
from bench.common.cluster import FlagServer

DEGRADED = frozenset({"BYPASS", "STALE"})
L1_MAX_AGE = 1.0  # seconds a server's in-process copy of a flag may live (L1_MAX_AGE_MS's default)


@dataclass(frozen=True)
class Read:
    """One flag as one answer showed it; a bulk answer is one Read per flag (readers.py)."""

    server: int
    key: str
    start: float  # when the request left (a read "started after" a write's acknowledgement is judged by this)
    end: float
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    version: int | None
    cache: str  # X-Cache: HIT, MISS, BYPASS, STALE ("" when there was none)
    enabled: bool | None
    path: str = "single"  # readers.PATHS
    scheduled: float | None = None  # open loop: when the request was due (latency runs from here)
    etag: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (200, 304)  # 304: a conditional bulk reader's last body still holds

    @property
    def latency(self) -> float:
        return self.end - (self.start if self.scheduled is None else self.scheduled)


@dataclass(frozen=True)
class Write:
    key: str
    server: int
    start: float
    end: float  # the acknowledgement time, when `status` is 2xx
    status: int
    version: int | None  # the version the 2xx answer stored

    @property
    def acked(self) -> bool:
        return 200 <= self.status < 300


def read_flag(server: FlagServer, key: str, *, timeout: float = 10.0) -> Read:
    answer = server.get(f"/flags/{key}", timeout=timeout)
    body = _json(answer) if answer.status == 200 else {}
    return Read(
        server.index, key, answer.start, answer.end, answer.status,
        body.get("version"), answer.headers.get("x-cache", ""), body.get("enabled"),
    )  # fmt: skip


def write_flag(
    server: FlagServer, method: str, key: str, body: dict[str, Any], *, timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> Write:  # fmt: skip
    """PATCH /admin/flags/{key} (or POST /admin/flags) through `server`; its 2xx answer carries the new version."""
    path = "/admin/flags" if method == "POST" else f"/admin/flags/{key}"
    answer = server.admin(method, path, body, timeout=timeout, headers=headers)
    stored = _json(answer) if 200 <= answer.status < 300 else {}
    return Write(key, server.index, answer.start, answer.end, answer.status, stored.get("version"))


def not_served(servers: Sequence[FlagServer], writes: Sequence[Write]) -> list[Write]:
    """Acknowledged writes whose version some server does not serve at the end.

    Read once per server and key, twice the longest any in-process copy may outlive the last acknowledgement
    after it (an answer within that bound may be older by design: DESIGN.md's 1 s staleness; twice: the margin
    of every correctness deadline, since a copy's age starts when it lands in the cache, a busy machine's
    scheduling delay after the Redis read that fetched it)."""
    acked = [w for w in writes if w.acked and w.version is not None]
    if not acked:
        return []
    time.sleep(max(0.0, max(w.end for w in acked) + 2 * L1_MAX_AGE - time.monotonic()))
    served = {(s.index, key): read_flag(s, key).version for s in servers for key in {w.key for w in acked}}
    return [w for w in acked if any((served[(s.index, w.key)] or 0) < (w.version or 0) for s in servers)]


def _json(answer: Answer) -> dict[str, Any]:
    try:
        parsed = answer.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


@dataclass(eq=False)
class Repeat:
    """Calls `action` every `interval` seconds in a thread until stopped; keeps what each call returned."""

    interval: float
    action: Callable[[], Any]
    results: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Repeat:
        self._thread = threading.Thread(target=self._run, name="repeat", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.results.append(self.action())
            next_at += self.interval

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
