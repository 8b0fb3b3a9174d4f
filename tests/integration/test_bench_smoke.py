"""The benchmark code runs end to end on tiny counts: `make bench` and `make bench-peer` will not die of a typo.

No timing is asserted (timing goals live in bench/): only that every path was measured, every answer
was the one the path is meant to time, and the results render. wrk and Unleash are not needed: the
closed-loop runs are skipped, and our own local server stands in for the peer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import readme as readme_generator
from bench.common import http_load, pyprofile, report
from bench.common.cluster import Cluster, ClusterOptions, running_cluster
from bench.common.http_load import ResponseParser, Target
from bench.common.results import write_results
from bench.http import local_server
from bench.http.local_server import HttpPlan
from bench.peer import compare
from bench.perf import in_process

pytestmark = [pytest.mark.real, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One Redis, one PostgreSQL and one local server (one worker) for every bench below."""
    with running_cluster(ClusterOptions(servers=1, flags_env="smoke", env=(("WORKERS", "1"),))) as running:
        yield running


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests write results, as `make bench` writes them to bench/results/ (never touched here)."""
    return tmp_path_factory.mktemp("bench-results")


def test_in_process_bench_times_every_path_with_the_expected_answers(cluster: Cluster, results_dir: Path) -> None:
    results = in_process.run(in_process.QUICK, cluster)

    assert in_process.problems(results) == []
    for mode in in_process.MODES:
        paths = results["modes"][mode]["paths"]
        assert set(paths) == {"raw_get", "l1_hit", "redis_hit", "db_raw", "db_read", "redis_down"}
        assert all(summary["count"] > 0 for summary in paths.values())
        assert results["memory"][mode]["after_reads"]["reads"] >= in_process.QUICK.memory_reads
        assert results["cold_start"][mode]["answers"] == ["200 HIT"]
        assert results["cold_start"][mode]["imports_ms"]["total"] > 0
    assert results["modes"]["tracer-on"]["xray_udp"]["datagrams"] > 0  # Tracer forced on really sends segments
    assert results["modes"]["tracer-off"]["xray_udp"]["datagrams"] == 0
    assert len(results["ratios"]) == 2 * len(in_process.BARS)
    assert "L1 hit through the handler" in in_process.tables(results)
    _save(results_dir / "perf.json", results)


def test_http_bench_runs_sequential_and_open_loop_loads(cluster: Cluster, results_dir: Path) -> None:
    plan = HttpPlan(**{**vars(local_server.QUICK), "use_wrk": False, "open_seconds": 0.3})

    results = local_server.run_on(cluster, plan, workers=1)

    for measured in results["targets"].values():
        assert measured["sequential"]["statuses"] == {"200": plan.sequential}
        assert measured["wrk"] is None
        for run in measured["open_loop"]:
            assert run["errors"] == {} and run["completed"] == run["requests"]
            assert run["generator_lag_max_ms"] is not None
    assert "open loop" in local_server.tables(results)
    _save(results_dir / "http.json", results)


def test_peer_comparison_renders_with_our_server_standing_in_for_the_peer(cluster: Cluster, results_dir: Path) -> None:
    # Given our server standing in for Unleash on one of the two routes
    plan, server = compare.QUICK, cluster.servers[0]
    local_server.create_flag(server)
    ours = local_server.our_targets(server.port)
    targets = {"get_flag": ours["get_flag"], "unleash": ours["ofrep_bulk"]}

    # When both are measured
    measured = compare.measure(targets, dict.fromkeys(targets, [server.process.pid]), plan, use_wrk=False)

    # Then the results compare them route by route and render
    results = {
        "plan": vars(plan), "targets": measured, "ratios": compare.ratios(measured),
        "memory": {"ours": {"total_rss_kib": 1, "processes": 1}, "unleash": {"total_rss_kib": 1, "processes": 1}},
        "machine": {**report.machine(cluster), "unleash": "stand-in", "node": "-"}, "startup": {"unleash_s": 0},
        "profile": None, "kind": "peer", "form": "quick",
    }  # fmt: skip
    assert [row["route"] for row in results["ratios"]] == ["GET /flags/{key}"]
    assert "sequential p50, ours / Unleash" in compare.tables(results)
    _save(results_dir / "peer.json", results)


def test_readme_section_is_generated_between_markers_and_regenerated_in_place(results_dir: Path) -> None:
    # Given a README without markers
    readme = results_dir / "README.md"
    readme.write_text("# flag service\n")

    # When the generator runs twice
    for _ in range(2):
        assert readme_generator.main(["--readme", str(readme), "--results", str(results_dir)]) == 0

    # Then the Performance section is there once, from the results the tests above wrote
    text = readme.read_text()
    start, _ = readme_generator.markers("performance")
    assert text.count(start) == 1 and text.count("## Performance") == 1
    for produced in ("perf.json", "http.json", "peer.json"):
        assert (results_dir / produced).exists()  # the three tests above ran and their results render
    assert "| GET /flags/{key} |" in text and "No comparison yet" not in text


def _save(path: Path, results: dict[str, Any]) -> None:
    write_results(results, path, form="quick")


def test_answers_are_parsed_by_length_and_by_chunks() -> None:
    by_length, chunked = ResponseParser(), ResponseParser()

    assert not by_length.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
    assert by_length.feed(b"lo")
    assert not chunked.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert chunked.feed(b"0\r\n\r\n")
    assert (by_length.status, by_length.close, chunked.status) == (200, False, 200)


def test_wrk_script_escapes_what_it_sends() -> None:
    target = Target("t", 1, "POST", "/x", (("Authorization", 'a"b'),), b'{"context": {}}')

    script = http_load.wrk_script(target)

    assert 'wrk.headers["Authorization"] = "a\\"b"' in script
    assert 'wrk.body = "{\\"context\\": {}}"' in script


def test_profile_samples_are_charged_to_the_innermost_known_layer() -> None:
    raw = (
        'process 1:"x";serve_one (local/prefork/connection.py:1);decorate (aws_lambda_powertools/metrics/a.py:2);'
        "dumps (json/__init__.py:3) 3\n"
        "serve_one (local/prefork/connection.py:1);write (socket.py:9) 1\n"
    )

    summary = pyprofile.summarize(raw)

    assert summary["samples"] == 4
    assert summary["layers"]["Powertools Metrics (EMF serialization, print)"] == 75.0
    assert sum(summary["layers"].values()) == 100.0
