"""Bulk reads while Redis is down: full listings and time per bulk read, before and after listing.py.

Before (until session 4), every bulk read in BYPASS listed every flag from PostgreSQL; after, a process
serves its last listing again once PostgreSQL said its revision has not moved, and concurrent reads share
one call. Both run here on one real PostgreSQL with pg_stat_statements (statements counted by PostgreSQL),
with a Redis that refuses connections, in one process (one local-server worker or Lambda container):
sequential reads, conditional reads (If-None-Match with the current ETag: 304), and THREADS reads at once.

    PYTHONPATH=runtime:. python -m bench.perf.bulk_bypass [--flags 100] [--reads 320]

`make bench` runs it: bench/results/bulk_bypass.json and README's Reliability paragraph (`section`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.common import report
from bench.common.cluster import count_statements
from bench.common.results import results_file, write_results
from flagservice import telemetry
from flagservice.adapters.migrations import migrate
from flagservice.adapters.postgres_repository import PostgresFlagRepository
from flagservice.adapters.redis_cache import RedisFlagCache
from flagservice.cache_aside import MAX_FLAGS, CacheAside
from flagservice.errors import StoreUnavailableError
from flagservice.flags.model import FlagDefinition
from flagservice.service import FlagService
from local.embedded import ServerProcess, start_postgres

DOWN_REDIS = "redis://127.0.0.1:1/0"
LISTINGS = "%LEFT JOIN flags f ON f.definition IS NOT NULL ORDER BY%"
REVISION_READS = "SELECT revision FROM flag_revision_counter"
CONTEXT = {"targetingKey": "u"}
THREADS = 16


class EveryReadLists:
    """The bulk path before listing.py: one full listing per read."""

    def current(self, source: PostgresFlagRepository, *, at_least: int | None = None) -> tuple[int, list[Any]]:
        return source.list_at_revision(limit=MAX_FLAGS)

    def clear(self) -> None:
        pass


def counted_postgres(workdir: Path) -> ServerProcess:
    server = count_statements(start_postgres(data_dir=workdir / "postgres"))
    migrate(server.url)
    return server


def statements(url: str, pattern: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE %s", (pattern,))
        return int(row.fetchone()[0])  # type: ignore[index]


def container(url: str, *, reuse: bool) -> FlagService:
    repository = PostgresFlagRepository.connect(url)
    cache = RedisFlagCache(
        RedisFlagCache.client_for(DOWN_REDIS, max_connections=4),
        env="bench",
        soft_ttl=lambda: 300.0,
        stale_max_age=86400,
        negative_ttl=30,
    )
    reads = CacheAside(repository, cache)
    if not reuse:
        reads.listings = EveryReadLists()  # type: ignore[assignment]
    return FlagService(repository, reads=reads)


def measured(url: str, run: Callable[[], list[float | None]]) -> dict[str, Any]:
    """Run `run` (the seconds of each read, None for a failed one) between two readings of PostgreSQL's counts."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    results = run()
    seconds = sorted(s for s in results if s is not None)
    return {
        "reads": len(results),
        "failed": len(results) - len(seconds),
        "full_listings": statements(url, LISTINGS),
        "revision_reads": statements(url, REVISION_READS),
        "p50_ms": round(statistics.median(seconds) * 1000, 3) if seconds else None,
        "p99_ms": round(seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))] * 1000, 3) if seconds else None,
    }


def timed(call: Callable[[], object]) -> float | None:
    """The seconds one read took, None if it failed (no snapshot to fall back on: a 503)."""
    started = time.perf_counter()
    try:
        call()
    except StoreUnavailableError:
        return None
    return time.perf_counter() - started


def sequential(service: FlagService, reads: int) -> list[float | None]:
    return [timed(lambda: service.evaluate_all(CONTEXT, if_none_match=None)) for _ in range(reads)]


def conditional(service: FlagService, reads: int) -> list[float | None]:
    """A client's first read, then conditional ones with the ETag it got (each a 304 while nothing changes)."""
    etag: list[str | None] = [None]

    def read() -> None:
        etag[0] = service.evaluate_all(CONTEXT, if_none_match=etag[0]).etag

    return [timed(read) for _ in range(reads)]


def at_once(service: FlagService, reads: int) -> list[float | None]:
    """THREADS threads read together, `reads // THREADS` each (an embedder serving requests on threads)."""
    seconds: list[float | None] = []
    start = threading.Barrier(THREADS)

    def one() -> None:
        start.wait()
        seconds.extend(sequential(service, max(1, reads // THREADS)))

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds


SCENARIOS = {"sequential": sequential, "conditional": conditional, f"{THREADS}_threads": at_once}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=100)
    parser.add_argument("--reads", type=int, default=320)
    args = parser.parse_args()
    telemetry.logger.setLevel("ERROR")  # every read logs "cache unavailable" otherwise
    workdir = Path(tempfile.mkdtemp(prefix="flagservice-bench-", dir="/var/tmp"))
    workdir.chmod(0o755)
    server = counted_postgres(workdir)
    try:
        seed(server.url, args.flags)
        machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "redis": "refused (none running)",
                   "postgres": f"{server.version} ({server.kind})"}  # fmt: skip
        results = {"kind": "bulk_bypass", "flags": args.flags, "reads": args.reads, "machine": machine,
                   "scenarios": compare(server.url, args.reads)}  # fmt: skip
        print(json.dumps(results["scenarios"], indent=2))
        write_results(results, results_file("bulk_bypass"), form="full")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def seed(url: str, flags: int) -> None:
    repository = PostgresFlagRepository.connect(url)
    try:
        service = FlagService(repository, reads=CacheAside(repository, None))
        for index in range(flags):
            definition = FlagDefinition.model_validate({"key": f"f{index:04d}", "enabled": True})
            service.put_flag(definition, actor="bench", if_match=None)
    finally:
        repository.close()


def compare(url: str, reads: int) -> dict[str, Any]:
    """Every scenario before and after, each on a fresh container (its first listing counts too)."""
    results: dict[str, Any] = {}
    for name, scenario in SCENARIOS.items():
        for mode in ("before", "after"):
            service = container(url, reuse=mode == "after")
            try:
                results[f"{name}:{mode}"] = measured(url, functools.partial(scenario, service, reads))
            finally:
                service.reads.repository.close()  # type: ignore[attr-defined]
    return results


def section(results: dict[str, Any] | None) -> str:
    """README's paragraph: full listings, revision reads and time per read, before and after, per scenario."""
    if results is None:
        return "_No results yet: run `make bench` (bench/perf/bulk_bypass.py)._"
    machine = results["machine"]
    head = (f"Measured {results['generated_at']} on {machine['cpus']} CPUs, Python {machine['python']}, PostgreSQL "
            f"{machine['postgres']}; {results['flags']} flags, {results['reads']} bulk reads per scenario, Redis "
            "refusing connections; statements counted by pg_stat_statements.")  # fmt: skip
    rows = []
    for name in SCENARIOS:
        before, after = results["scenarios"][f"{name}:before"], results["scenarios"][f"{name}:after"]
        listings = [before["full_listings"], after["full_listings"], after["revision_reads"]]
        times = [report.ms(before["p50_ms"]), report.ms(after["p50_ms"])]
        rows.append([name.replace("_", " "), *listings, *times, before["failed"] + after["failed"]])
    table = report.markdown_table(
        ["bulk reads", "full listings before", "after", "revision reads after", "p50 before", "p50 after", "failed"],
        rows,
    )
    return f"{head}\n\n{table}"


if __name__ == "__main__":
    main()
