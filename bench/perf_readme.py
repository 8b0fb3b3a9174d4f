"""Writes the README's Performance numbers from bench/results/{perf,http,peer}.json, between markers.

    <!-- generated:performance:start --> ... <!-- generated:performance:end -->

Run by `make bench` and `make bench-peer` after they write their results (never by `make test`).
Only the text between these markers changes, as bench/readme.py does for the Consistency and
Reliability sections; if the markers are missing, a Performance section holding them is appended.
A missing results file leaves a line saying which command produces it.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from bench import http_bench, peer_unleash, perf, pyprofile

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SECTION = "performance"
START, END = f"<!-- generated:{SECTION}:start -->", f"<!-- generated:{SECTION}:end -->"


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _measured(results: dict[str, Any]) -> str:
    machine = results["machine"]
    return (
        f"_Measured {results['generated_at']} ({results['form']} form) on {machine['cpus']} CPUs, Python "
        f"{machine['python']}, Redis {machine['redis']}, PostgreSQL {machine['postgres']}._"
    )


def in_process(results: dict[str, Any] | None) -> list[str]:
    if results is None:
        return ["_No in-process results yet: run `make bench`._"]
    problems = [f"- problem: {p}" for p in results.get("problems", [])]
    return [_measured(results), "", perf.tables(results), *([""] + problems if problems else [])]


def http(results: dict[str, Any] | None) -> list[str]:
    if results is None:
        return ["_No HTTP results yet: run `make bench`._"]
    workers = results["plan"]["workers"]
    return [_measured(results) + f" Local server with {workers} worker processes.", "", http_bench.tables(results)]


def peer(results: dict[str, Any] | None) -> list[str]:
    if results is None:
        return ["_No comparison yet: run `make bench-peer`._"]
    machine = results["machine"]
    lines = [
        _measured(results) + f" Unleash {machine['unleash']} on Node {machine['node']}.",
        "",
        peer_unleash.tables({**results, "profile": None}),
    ]
    profile = results.get("profile")
    if profile and not profile.get("error"):
        rows = "\n".join(f"| {name} | {share:.1f} % |" for name, share in profile["layers"].items())
        lines += ["", "Where our time goes under wrk (py-spy, busy workers only):", "", "| layer | share |",
                  "|---|---|", rows]  # fmt: skip
    elif profile:
        lines += ["", pyprofile.table(profile)]
    return lines


def section(results_dir: Path) -> str:
    parts = [
        "**In process** (`make bench`; ratios of medians, one run, one Redis):",
        "",
        *in_process(_load(results_dir / "perf.json")),
        "",
        "**Over HTTP** (`make bench`; the local server, sequential, wrk closed loop, open loop):",
        "",
        *http(_load(results_dir / "http.json")),
        "",
        "**Against Unleash 8** (`make bench-peer`; same machine, same client, same run):",
        "",
        *peer(_load(results_dir / "peer.json")),
    ]
    return "\n".join(parts)


def render(text: str, results_dir: Path) -> str:
    body = section(results_dir)
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: f"{START}\n{body}\n{END}", text, count=1)
    return text.rstrip("\n") + f"\n\n## Performance\n\n{START}\n{body}\n{END}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    args.readme.write_text(render(args.readme.read_text(), args.results))
    print(f"updated the Performance section of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
