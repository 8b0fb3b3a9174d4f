"""Issue 12: two writers whose commits are forced out of number order at the database, every read path watched.

Five local servers (one container each) share Redis and PostgreSQL: two take the writes, and
readers on every path (readers.py: single, OFREP single, bulk, conditional bulk) read the other three
open loop. A round,
at a hold point of dbhold.py (`commit` or `early`):

1. both race flags are set enabled again, and the readers see it (`settle`);
2. writer 1 (through server 0) PATCHes flag A `{"enabled": false}` and is held at the hold point
   (at `commit` its revision is already taken);
3. writer 2 (through server 1) PATCHes the kill switch, flag B `{"enabled": false}`;
4. once writer 2 is answered, the hold lasts `linger` more (readers see B's change alone), never
   longer than `HOLD_CAP` in all; then the harness lets writer 1 go, and it commits later;
5. the readers read on for `observe` seconds, past CACHE_TTL_SECONDS (4 s here), so a bulk snapshot
   rebuilt at an unchanged revision shows up as one ETag naming two different flag lists.

Asserted per round, for both writes (each is a kill switch): no read of any path that started more
than `grace` (1 s; tests 2 s) after the write's 2xx shows an older version, that is the flag still
enabled; and over the whole run, no ETag names two different flag lists (no 304 for changed content).

If-Match rounds: writer 1 PATCHes flag C's description with `If-Match: *` and is held (at the same
hold point); writer 2 PATCHes C `{"enabled": false}`; the hold ends when writer 2 is answered (at most
`IF_MATCH_CAP`). PostgreSQL must then hold `enabled: false` whenever the kill switch got its 2xx.

`python -m bench.ordering` (and `make bench-propagation`) runs the long form and writes
bench/results/ordering.json; tests/integration/test_ordering.py runs the short form.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.cluster import Cluster, ClusterOptions, running_cluster
from bench.dbhold import HOLD_CAP, POINTS, Hold, install
from bench.load import Read, Write, write_flag
from bench.measure import reader_delay, stale_reads
from bench.readers import PATHS, PathReader, etag_reuse, readers_for, reply_summary, run_readers

RESULTS = Path(__file__).resolve().parent / "results" / "ordering.json"
HELD, KILL_SWITCH, IF_MATCH = "ordering-held", "ordering-kill-switch", "ordering-if-match"
FILLERS = tuple(f"ordering-filler-{i}" for i in range(6))
TTL_SECONDS = 4
# Servers 0 and 1 take the writes, 2 to 4 are read: a held write occupies its server's only worker (one
# container, one request at a time), which must not show up as reader latency.
OPTIONS = ClusterOptions(servers=5, flags_env="ordering", env=(("CACHE_TTL_SECONDS", str(TTL_SECONDS)),))
IF_MATCH_CAP = 0.8  # under the service's 1 s lock timeout: a kill switch queued behind the held row still commits
ENGAGE_TIMEOUT = 3.0


@dataclass(frozen=True)
class Plan:
    rounds: int
    rate: float  # requests per second on each path of each server
    settle: float
    linger: float
    observe: float
    grace: float = 1.0


SHORT = Plan(rounds=3, rate=20.0, settle=1.0, linger=0.4, observe=TTL_SECONDS + 1.0, grace=2.0)
LONG = Plan(rounds=3, rate=40.0, settle=1.5, linger=0.5, observe=TTL_SECONDS + 2.0)


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


def _commit_order_round(cluster: Cluster, hold: Hold, point: str, plan: Plan) -> Round:
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


def _race_writes(rounds: list[Round]) -> list[tuple[Write, float]]:
    """Every acknowledged race write, with the start of the next round (its reads are judged until then)."""
    ends = [one.start for one in rounds[1:]] + [float("inf")]
    return [(write, end) for one, end in zip(rounds, ends, strict=True)
            for write in (one.race.first, one.race.second) if write.acked]  # fmt: skip


def _verdict(write: Write, reads: list[Read], grace: float) -> tuple[int, int, float | None]:
    """Of one reader's reads of the written flag: older ones started > grace after the 2xx, of them those
    showing it enabled, and the delay until this reader served the write (measure.py)."""
    assert write.version is not None
    late = [r for r in reads if r.start > write.end + grace and r.version is not None and r.version < write.version]
    return stale_reads(write, late, grace=grace), sum(1 for r in late if r.enabled), reader_delay(write, reads)


def _path_rows(rounds: list[Round], readers: list[PathReader], grace: float) -> dict[str, dict[str, Any]]:
    """Per path: requests, failures, latency, reads > grace after a race write's 2xx that were older, worst delay."""
    rows = {}
    for path in PATHS:
        mine = [reader for reader in readers if reader.path == path]
        verdicts = [_verdict(write, [r for r in reader.reads if r.key == write.key and r.start < end], grace)
                    for write, end in _race_writes(rounds) for reader in mine]  # fmt: skip
        delays = [delay for _, _, delay in verdicts]
        worst = None if None in delays else max((d for d in delays if d is not None), default=None)
        rows[path] = {**reply_summary([reply for reader in mine for reply in reader.replies]),
                      "stale_after_grace": sum(v[0] for v in verdicts),
                      "shown_enabled_after_grace": sum(v[1] for v in verdicts),
                      "not_converged": delays.count(None), "worst_delay_s": worst}  # fmt: skip
    return rows


def _race_summary(one: Round) -> dict[str, Any]:
    race = one.race
    return {
        "engaged": race.engaged is not None,
        "first": {"status": race.first.status, "version": race.first.version,
                  "answered_after_release_s": round(race.first.end - race.released, 4)},
        "second": {"status": race.second.status, "version": race.second.version,
                   "answered_in_s": round(race.second.end - race.second.start, 4)},
        "second_answered_while_first_held": race.second_answered_while_held,
        "held_s": None if race.engaged is None else round(race.released - race.engaged, 4),
    }  # fmt: skip


def commit_order(cluster: Cluster, point: str, plan: Plan) -> dict[str, Any]:
    """`plan.rounds` commit-order rounds at `point` under readers on every path."""
    readers = readers_for(cluster.servers[2:], [HELD, KILL_SWITCH], plan.rate)
    hold = Hold(cluster.postgres.url)
    loop = run_readers(readers)
    try:
        rounds = [_commit_order_round(cluster, hold, point, plan) for _ in range(plan.rounds)]
    finally:
        loop.stop()
        hold.close()
    return {
        "point": point,
        "rounds": [_race_summary(one) for one in rounds],
        "paths": _path_rows(rounds, readers, plan.grace),
        "etags_reused": len(etag_reuse(readers)),
        "generator_lag_s": loop.lag_summary(),
        "grace_s": plan.grace,
    }


def if_match_rounds(cluster: Cluster, point: str, rounds: int) -> list[dict[str, Any]]:
    hold = Hold(cluster.postgres.url)
    try:
        return [if_match_round(cluster, hold, point, number) for number in range(rounds)]
    finally:
        hold.close()


def run_point(cluster: Cluster, point: str, plan: Plan) -> dict[str, Any]:
    return commit_order(cluster, point, plan) | {"if_match": if_match_rounds(cluster, point, plan.rounds)}


def order_shortfalls(row: dict[str, Any]) -> list[str]:
    """What kept a hold point from "every read path current within the grace, no ETag reuse"."""
    missed = []
    if not all(r["engaged"] for r in row["rounds"]):
        missed.append("a hold never engaged (harness: no write reached the trigger)")
    refused = [r for r in row["rounds"] if r["first"]["status"] >= 300 or r["second"]["status"] >= 300]
    if refused:
        missed.append(f"{len(refused)} rounds with a refused write: " + ", ".join(
            f"{r['first']['status']}/{r['second']['status']}" for r in refused))  # fmt: skip
    for path, stats in row["paths"].items():
        if stats["failed"]:
            missed.append(f"{path}: {stats['failed']} failed reads")
        if stats["stale_after_grace"] or stats["not_converged"]:
            missed.append(f"{path}: {stats['stale_after_grace']} reads older than a write acknowledged "
                          f"> {row['grace_s']} s before ({stats['shown_enabled_after_grace']} showed it enabled), "
                          f"{stats['not_converged']} never current")  # fmt: skip
    if row["etags_reused"]:
        missed.append(f"{row['etags_reused']} ETags named two different flag lists (304 for changed content)")
    return missed


def if_match_shortfalls(rounds: list[dict[str, Any]]) -> list[str]:
    missed = []
    if not all(r["engaged"] for r in rounds):
        missed.append("an If-Match hold never engaged (harness: no write reached the trigger)")
    reverted = sum(1 for r in rounds if r["reverted"])
    if reverted:
        missed.append(f"If-Match: * reverted an acknowledged kill switch in {reverted} of {len(rounds)} rounds")
    return missed


def shortfalls(row: dict[str, Any]) -> list[str]:
    return order_shortfalls(row) + if_match_shortfalls(row["if_match"])


def run(plan: Plan, points: tuple[str, ...] = POINTS) -> dict[str, Any]:
    with running_cluster(OPTIONS) as cluster:
        prepare(cluster)
        results = [run_point(cluster, point, plan) for point in points]
        machine = report.machine(cluster)
    return {"kind": "ordering", "plan": vars(plan), "servers": OPTIONS.servers, "read_servers": OPTIONS.servers - 2,
            "cache_ttl_s": TTL_SECONDS,
            "machine": machine, "points": results}  # fmt: skip


def prepare(cluster: Cluster) -> None:
    """The triggers in the cluster's database, and the flags the rounds write and read."""
    install(cluster.postgres.url)
    _seed(cluster)


def table(results: dict[str, Any]) -> str:
    rows = []
    for point in results["points"]:
        for path, s in point["paths"].items():
            rows.append([point["point"], path, f"{s['failed']} / {s['requests']}",
                         " / ".join(report.seconds(s[k]) for k in ("p50", "p99", "max")),
                         f"{s['stale_after_grace']} ({s['shown_enabled_after_grace']})",
                         report.seconds(s["worst_delay_s"]) if not s["not_converged"] else "never"])  # fmt: skip
    head = ["hold point", "path", "failed reads", "latency p50 / p99 / max",
            f"reads older than a 2xx > {results['plan']['grace']:.0f} s before (kill switch shown enabled)",
            "worst delay"]  # fmt: skip
    return report.markdown_table(head, rows)


def summary_table(results: dict[str, Any]) -> str:
    rows = []
    for point in results["points"]:
        rounds = point["rounds"]
        early = sum(1 for r in rounds if r["second_answered_while_first_held"])
        reverted = sum(1 for r in point["if_match"] if r["reverted"])
        rows.append([point["point"], len(rounds), f"{early} of {len(rounds)}", point["etags_reused"],
                     f"{reverted} of {len(point['if_match'])}", "; ".join(shortfalls(point)) or "all met"])  # fmt: skip
    head = ["hold point", "rounds", "kill switch answered while the other write was held", "ETags naming two bodies",
            "If-Match: * reverted the kill switch", "bars"]  # fmt: skip
    return report.markdown_table(head, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short form (as make test runs it)")
    parser.add_argument("--points", nargs="*", default=list(POINTS), help="hold points to run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    results = run(SHORT if args.short else LONG, tuple(args.points))
    results["form"] = "short" if args.short else "long"
    report.stamp(results)
    print(summary_table(results) + "\n\n" + table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if not any(shortfalls(point) for point in results["points"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
