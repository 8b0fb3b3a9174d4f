"""Running one drill on a cluster: load, baseline, the fault, the kill switch, healing, recovery, verification.

The drill's story and the meaning of every number are in suite.py's docstring; the numbers are
computed from what the run observed in summary.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
import redis

from bench.common.cluster import Cluster
from bench.common.load import Repeat, Write, not_served, read_flag, write_flag
from bench.common.readers import ReadLoop
from bench.drills.catalog import Drill
from bench.drills.summary import KILL_SWITCH, Audit, Observed, summarize

WRITTEN = ("drill-written-0", "drill-written-1", "drill-written-2")
PROBE = "drill-probe"
HARNESS_COMMANDS = frozenset({"info", "flushall", "client|kill", "client"})


@dataclass(frozen=True)
class DrillPlan:
    baseline: float  # seconds of load before the fault
    fault: float  # seconds the fault lasts (an instant fault is observed this long)
    flip_after: float  # the kill switch is flipped this long into the fault
    settle: float  # recovered: this long with only HITs from every server
    recovery_cap: float
    flags: int
    rate: float  # reads per second through each server, open loop (on a fixed schedule)
    write_every: float  # background writes


def flag_keys(plan: DrillPlan) -> list[str]:
    return [f"drill-flag-{i:03d}" for i in range(plan.flags)]


def seed(cluster: Cluster, plan: DrillPlan) -> None:
    """Create every flag the drills read and write, then read each through every server (a warm cache)."""
    writer = cluster.servers[0]
    for key in [KILL_SWITCH, *flag_keys(plan), *WRITTEN, PROBE]:
        written = write_flag(writer, "POST", key, {"key": key, "enabled": True})
        if not written.acked:
            raise RuntimeError(f"could not create {key}: HTTP {written.status}")
    for server in cluster.servers:
        for key in [KILL_SWITCH, *flag_keys(plan)]:
            read_flag(server, key)


def _counters(cluster: Cluster, drill: Drill) -> dict[str, int | None]:
    """Redis commands so far (not the harness's own) and PostgreSQL flag reads; None where a store cannot say."""
    commands = None
    if drill.name not in ("redis-killed", "redis-paused") or cluster.redis.alive:
        try:
            stats = cluster.commandstats(timeout=0.5)
            commands = sum(calls for name, calls in stats.items() if name not in HARNESS_COMMANDS)
        except redis.RedisError:
            commands = None
    try:
        flag_reads: int | None = cluster.flag_reads()
    except psycopg.Error:
        flag_reads = None
    return {"commands": commands, "flag_reads": flag_reads}


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


WRITTEN_KEYS = (KILL_SWITCH, *WRITTEN, PROBE)


def _audited(cluster: Cluster) -> set[tuple[str, int]]:
    """(key, version) of every write PostgreSQL recorded for the keys drills write."""
    rows = cluster.sql("SELECT key, version FROM flag_audit WHERE key = ANY(%s)", (list(WRITTEN_KEYS),))
    return {(str(key), int(version)) for key, version in rows}


class DrillRun:
    """One drill on a cluster: load, baseline, fault, kill switch, healing, recovery, verification."""

    def __init__(self, cluster: Cluster, drill: Drill, plan: DrillPlan, kill_switch_enabled: bool) -> None:
        self.cluster, self.drill, self.plan = cluster, drill, plan
        self.kill_switch_enabled = kill_switch_enabled
        self.seen = Observed()
        keys = [key for flag in flag_keys(plan) for key in (KILL_SWITCH, flag)]
        self.loops = [ReadLoop(server, keys, plan.rate) for server in cluster.servers]
        self._turn = 0

    def run(self) -> dict[str, Any]:
        audited_before = _audited(self.cluster)
        for loop in self.loops:
            loop.start()
        try:
            with Repeat(self.plan.write_every, self._background_write) as background:
                self.seen.baseline_start = time.monotonic()
                self.seen.marks["start"] = _counters(self.cluster, self.drill)
                time.sleep(self.plan.baseline)
                self._fault()
                self._recover()
            self.seen.writes += [w for w in (*background.results, self.seen.flip, self.seen.probe) if w is not None]
            lost = {(w.key, w.version or 0) for w in not_served(self.cluster.servers, self.seen.writes)}
        finally:
            for loop in self.loops:
                loop.stop()
        return summarize(self.drill, self.seen, self.loops, Audit(_audited(self.cluster) - audited_before, lost))

    def _background_write(self) -> Write:
        key, self._turn = WRITTEN[self._turn % len(WRITTEN)], self._turn + 1
        body = {"key": key, "enabled": True, "description": f"write {self._turn}"}
        return write_flag(self.cluster.servers[0], "POST", key, body, timeout=5)

    def _fault(self) -> None:
        seen, plan = self.seen, self.plan
        seen.marks["baseline"] = _counters(self.cluster, self.drill)
        seen.start = time.monotonic()
        try:
            self.drill.inject(self.cluster)
            _sleep_until(seen.start + plan.flip_after)
            flip = {"enabled": not self.kill_switch_enabled}
            seen.flip = write_flag(self.cluster.servers[0], "PATCH", KILL_SWITCH, flip)
            self.kill_switch_enabled ^= seen.flip.acked
            _sleep_until(seen.start + plan.fault)
            seen.marks["fault"] = _counters(self.cluster, self.drill)
        finally:
            seen.end = time.monotonic()
            if not self.drill.instant:
                self.drill.heal(self.cluster)  # even after an error: the next drill needs a healthy cluster
        seen.back = time.monotonic() if not self.drill.instant else seen.start

    def _recover(self) -> None:
        """Wait for clean answers (or, with PostgreSQL, an acknowledged write); give up at the cap."""
        seen, deadline = self.seen, self.seen.back + self.plan.recovery_cap
        while time.monotonic() < deadline:
            if self.drill.store == "postgres":
                seen.probe = write_flag(self.cluster.servers[0], "POST", PROBE, {"key": PROBE, "enabled": True})
                if seen.probe.acked:
                    seen.recovered = seen.probe.end
                    break
            elif (last := self._last_unclean()) is not None:
                seen.recovered = last
                break
            time.sleep(0.1)
        seen.marks["recovered"] = _counters(self.cluster, self.drill)

    def _last_unclean(self) -> float | None:
        """The end of the last non-HIT answer since the store came back, once every server was clean `settle` s."""
        reads = [read for loop in self.loops for read in loop.between(self.seen.back, float("inf"))]
        last = max((r.end for r in reads if not (r.ok and r.cache == "HIT")), default=self.seen.back)
        if time.monotonic() - last < self.plan.settle:
            return None
        answered = all(loop.between(last, float("inf")) for loop in self.loops)
        return last if answered else None


class Drills:
    """Runs drills one after another on one cluster, carrying the kill switch's state from drill to drill."""

    def __init__(self, cluster: Cluster, plan: DrillPlan) -> None:
        self.cluster, self.plan = cluster, plan
        self.kill_switch_enabled = True
        seed(cluster, plan)

    def run(self, drill: Drill) -> dict[str, Any]:
        run = DrillRun(self.cluster, drill, self.plan, self.kill_switch_enabled)
        result = run.run()
        self.kill_switch_enabled = run.kill_switch_enabled
        return result
