"""One Lambda-like container for `make bench` (in_process.py starts one per Tracer mode): times the read paths.

Runs in its own process because Powertools configures its singletons (Tracer above all) at import,
from the environment the parent sets: Lambda's variables, Logger at INFO, Metrics on, and Tracer
either disabled or forced on with segments sent to the parent's UDP sink. Stdout carries the
handler's logs and EMF metrics, as in Lambda, so the results go to the file named by --out.

The paths are timed in interleaved rounds (each round times a batch of every path, the order
rotating), so that whatever else the machine is doing weighs on all of them alike; a floor and the
paths compared with it are always measured by the same process, on the same server, in the same
minutes. Every handler answer is checked (outside the timed window) for the expected X-Cache.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPO

FLAG_KEY = "bench-flag"
RAW_KEY = "bench:raw-get"
PROFILE_WARMUP_SECONDS = 0.5
EVENT_TEMPLATE = REPO / "events" / "get-flag.json"


@dataclass
class TimedPath:
    """A timed path: `call` is timed, `setup` runs before each call outside the timed window."""

    name: str
    call: Callable[[], Any]
    expect: str | None = None  # the X-Cache every answer must carry (handler paths)
    setup: Callable[[], None] | None = None


def rss_kib() -> dict[str, int]:
    """This process's resident set now and at its peak (VmRSS, VmHWM), in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return {"rss_kib": fields.get("VmRSS", 0), "peak_kib": fields.get("VmHWM", 0)}


def flag_event(key: str) -> dict[str, Any]:
    """events/get-flag.json (the sample API Gateway REST proxy event) for GET /flags/{key}."""
    event: dict[str, Any] = json.loads(EVENT_TEMPLATE.read_text())
    event["path"] = f"/flags/{key}"
    event["pathParameters"] = {"proxy": f"flags/{key}"}
    event["requestContext"]["path"] = f"/dev/flags/{key}"
    return event


def x_cache(answer: dict[str, Any]) -> str:
    values = (answer.get("multiValueHeaders") or {}).get("X-Cache") or [(answer.get("headers") or {}).get("X-Cache")]
    return f"{answer.get('statusCode')} {values[0]}"


class Timer:
    """Interleaved rounds over several paths; samples kept raw (recorded into histograms at the end)."""

    def __init__(self, paths: list[TimedPath]) -> None:
        self.paths = paths
        self.samples: dict[str, list[int]] = {p.name: [] for p in paths}
        self.unexpected: dict[str, dict[str, int]] = {p.name: {} for p in paths}
        self.handler_reads = 0

    def batch(self, path: TimedPath, count: int, *, keep: bool = True) -> None:
        clock, setup, call, expect = time.perf_counter_ns, path.setup, path.call, path.expect
        taken = self.samples[path.name]
        for _ in range(count):
            if setup is not None:
                setup()
            start = clock()
            answer = call()
            elapsed = clock() - start
            if keep:
                taken.append(elapsed)
            if expect is not None:
                self.handler_reads += 1
                seen = x_cache(answer)
                if seen != expect:
                    self.unexpected[path.name][seen] = self.unexpected[path.name].get(seen, 0) + 1

    def rounds(self, rounds: int, batch: int, warmup: int) -> None:
        for path in self.paths:
            self.batch(path, warmup, keep=False)
        for turn in range(rounds):
            shift = turn % len(self.paths)
            for path in self.paths[shift:] + self.paths[:shift]:
                self.batch(path, batch)

    def summaries(self) -> dict[str, Any]:
        from bench.common.hdr import Histogram

        out = {}
        for path in self.paths:
            histogram = Histogram()
            for value in self.samples[path.name]:
                histogram.record(value)
            out[path.name] = {**histogram.summary(), "unexpected": self.unexpected[path.name]}
        return out


def redis_paths(handler: Any, context: Any) -> list[TimedPath]:
    """Raw GET (the floor), an L1 hit, and a Redis hit with the L1 cleared before each call, all on one Redis."""
    import redis

    from flagservice import wiring

    service = wiring.get_service()
    raw = redis.Redis.from_url(os.environ["REDIS_URL"])  # a pooled client, as redis-py builds one
    raw.set(RAW_KEY, json.dumps(service.get_flag(FLAG_KEY).flag.to_api()))  # a value of the flag's size
    event = flag_event(FLAG_KEY)
    return [
        TimedPath("raw_get", lambda: raw.get(RAW_KEY)),
        TimedPath("l1_hit", lambda: handler.lambda_handler(event, context), expect="200 HIT"),
        TimedPath("redis_hit", lambda: handler.lambda_handler(event, context), "200 HIT", service.reads.l1.clear),
    ]


def redis_phase(args: argparse.Namespace, handler: Any, context: Any) -> tuple[dict[str, Any], Timer]:
    timer = Timer(redis_paths(handler, context))
    timer.rounds(args.rounds, args.batch, args.warmup)
    return timer.summaries(), timer


def profile_loop(path: TimedPath, seconds: float) -> int:
    """Call one path for `seconds` while py-spy samples this process (in_process.py keeps only stacks under here)."""
    deadline, calls = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        if path.setup is not None:
            path.setup()
        path.call()
        calls += 1
    return calls


def memory_after_reads(handler: Any, context: Any, reads: int) -> dict[str, Any]:
    """RSS once this container has answered `reads` reads of the flag (L1 hits, revalidated every 250 ms)."""
    event = flag_event(FLAG_KEY)
    for _ in range(reads):
        handler.lambda_handler(event, context)
    return {"reads": reads, **rss_kib()}


def redis_down_phase(args: argparse.Namespace, handler: Any, context: Any) -> dict[str, Any]:
    """Redis refused (nothing listens on its port) with the breaker open, against a database-only read.

    The database-only read is the same handler and request on a service built without any cache, so
    the ratio is what the Redis outage itself costs a read (the breaker check, the fallback), not
    what the handler costs on top of a bare SELECT (`db_raw`, reported for reference).
    """
    from flagservice import wiring
    from flagservice.service import FlagService

    os.environ["REDIS_URL"] = args.dead_redis_url
    wiring.reset()  # the next request builds the container's service again, now with a dead Redis
    event = flag_event(FLAG_KEY)
    handler.lambda_handler(event, context)
    service = wiring.get_service()
    repository = service.reads.repository
    database_only = FlagService(repository)

    def use(chosen: FlagService) -> Callable[[], None]:
        return lambda: setattr(wiring, "_service", chosen)

    call = lambda: handler.lambda_handler(event, context)  # noqa: E731
    timer = Timer(
        [
            TimedPath("db_raw", lambda: repository.get(FLAG_KEY)),
            TimedPath("db_read", call, expect="200 BYPASS", setup=use(database_only)),
            TimedPath("redis_down", call, expect="200 BYPASS", setup=use(service)),
        ]
    )
    timer.rounds(args.rounds, args.batch, args.warmup)
    result = timer.summaries()
    result["breaker_open_at_end"] = service.reads.breaker.state.value != "closed"  # open, or half-open: never closed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", help="only call this path (for py-spy) for --seconds, then exit")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--dead-redis-url", required=True)
    parser.add_argument("--memory-reads", type=int, default=10_000, help="RSS is read after this many reads")
    args = parser.parse_args(argv)

    init = rss_kib()
    started = time.perf_counter()
    from flagservice import handler, wiring
    from flagservice.lambda_context import LocalContext
    from flagservice.validation import parse_definition

    imported = time.perf_counter() - started
    after_import = rss_kib()
    wiring.get_service().put_flag(parse_definition({"key": FLAG_KEY, "enabled": True}), actor="bench", if_match=None)
    context = LocalContext(function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "flagservice-bench"))
    if args.profile:
        chosen = {path.name: path for path in redis_paths(handler, context)}[args.profile]
        profile_loop(chosen, PROFILE_WARMUP_SECONDS)
        profile_loop(chosen, args.seconds)
        return 0

    memory = memory_after_reads(handler, context, args.memory_reads)
    paths, timer = redis_phase(args, handler, context)
    at_end = {"reads": args.memory_reads + timer.handler_reads, **rss_kib()}
    down = redis_down_phase(args, handler, context)
    breaker_open = down.pop("breaker_open_at_end")
    result = {
        "tracer_disabled": bool(handler.tracer.disabled) if hasattr(handler.tracer, "disabled") else None,
        "import_s": round(imported, 4),
        "memory": {"at_start": init, "after_import": after_import, "after_reads": memory, "after_timing": at_end},
        "paths": {**paths, **down},
        "breaker_open_at_end": breaker_open,
        "plan": {"rounds": args.rounds, "batch": args.batch, "warmup": args.warmup},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
