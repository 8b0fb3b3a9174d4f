"""Writes the README's measured numbers from bench/results/*.json, between markers, so none is typed by hand.

    <!-- generated:performance:start --> ... <!-- generated:performance:end -->   from perf.json, http.json, peer.json
    <!-- generated:consistency:start --> ... <!-- generated:consistency:end -->   from propagation.json, ordering.json
    <!-- generated:browser:start --> ... <!-- generated:browser:end -->           from browser.json
    <!-- generated:browser-channel:start --> ... <!-- generated:browser-channel:end -->  from browser_channel.json
    <!-- generated:reliability:start --> ... <!-- generated:reliability:end -->   from drills.json
    <!-- generated:warmup:start --> ... <!-- generated:warmup:end -->             from warmup.json
    <!-- generated:bulk-bypass:start --> ... <!-- generated:bulk-bypass:end -->   from bulk_bypass.json

Run by `make bench`, `make bench-peer`, `make bench-propagation`, `make bench-browser` and `make drill`
after they write their results (never by `make test`); `python -m bench.readme` regenerates every section
from whatever results exist. Only the text between the markers changes; a section without markers is
appended under its own heading. A missing results file leaves a line saying which command produces it.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import REPO
from bench.common import pyprofile
from bench.common.results import RESULTS_DIR
from bench.consistency import browser_propagation, ordering, propagation
from bench.drills import suite, warmup
from bench.http import local_server
from bench.peer import compare
from bench.perf import bulk_bypass, in_process

README = REPO / "README.md"
# Docs that quote a generated section too, each only between markers they already hold.
QUOTED = {REPO / "docs" / "infrastructure.md": ("warmup", "browser-channel")}


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _machine(results: dict[str, Any]) -> str:
    machine = results["machine"]
    return (
        f"Measured {results['generated_at']} ({results['form']} form) on {machine['cpus']} CPUs, Python "
        f"{machine['python']}, Redis {machine['redis']}, PostgreSQL {machine['postgres']}."
    )


def performance(results_dir: Path) -> str:
    parts = [
        "**In process** (`make bench`; ratios of medians, one run, one Redis):",
        "",
        *_in_process(_load(results_dir / "perf.json")),
        "",
        "**Over HTTP** (`make bench`; the local server, sequential, wrk closed loop, open loop):",
        "",
        *_http(_load(results_dir / "http.json")),
        "",
        "**Against Unleash 8** (`make bench-peer`; same machine, same client, same run):",
        "",
        *_peer(_load(results_dir / "peer.json")),
    ]
    return "\n".join(parts)


def _in_process(results: dict[str, Any] | None) -> list[str]:
    if results is None:
        return ["_No in-process results yet: run `make bench`._"]
    problems = [f"- problem: {p}" for p in results.get("problems", [])]
    return [f"_{_machine(results)}_", "", in_process.tables(results), *([""] + problems if problems else [])]


def _http(results: dict[str, Any] | None) -> list[str]:
    if results is None:
        return ["_No HTTP results yet: run `make bench`._"]
    workers = results["plan"]["workers"]
    return [f"_{_machine(results)}_ Local server with {workers} worker processes.", "", local_server.tables(results)]


def _peer(results: dict[str, Any] | None) -> list[str]:
    if results is None:
        return ["_No comparison yet: run `make bench-peer`._"]
    machine = results["machine"]
    lines = [
        f"_{_machine(results)}_ Unleash {machine['unleash']} on Node {machine['node']}.",
        "",
        compare.tables({**results, "profile": None}),
    ]
    profile = results.get("profile")
    if profile and not profile.get("error"):
        rows = "\n".join(f"| {name} | {share:.1f} % |" for name, share in profile["layers"].items())
        lines += ["", "Where our time goes under wrk (py-spy, busy workers only):", "", "| layer | share |",
                  "|---|---|", rows]  # fmt: skip
    elif profile:
        lines += ["", pyprofile.table(profile)]
    return lines


def _consistency(results_dir: Path) -> str:
    return consistency(_load(results_dir / "propagation.json"), _load(results_dir / "ordering.json"))


def consistency(results: dict[str, Any] | None, order: dict[str, Any] | None = None) -> str:
    if results is None or "paths" not in results:  # none yet, or from before every path was read
        return "_No results yet: run `make bench-propagation`._"
    plan = results["plan"]
    lines = [
        _machine(results),
        f"{plan['writers']} concurrent writers (each through its own server process) and {results['readers']} "
        f"reader processes, each read on every path ({', '.join(results['paths'])}) at {plan['rate']:.0f} requests/s "
        f"on a fixed schedule; {plan['writes']} writes per writer and scenario; target "
        f"{results['target_seconds']:.0f} s (the contract's bound is 5 s).",
        "",
        propagation.table(results),
        "",
        *ordered(order),
    ]
    return "\n".join(lines)


def ordered(results: dict[str, Any] | None) -> list[str]:
    """The out-of-order commit rounds (bench/consistency/ordering/)."""
    if results is None:
        return ["_No out-of-order commit results yet: run `make bench-propagation`._"]
    plan = results["plan"]
    return [
        f"Commits forced out of number order at the database ({results['form']} form, {results['generated_at']}): "
        f"{plan['rounds']} rounds per hold point; writers through 2 servers, every path of "
        f"{results['read_servers']} others read at {plan['rate']:.0f} requests/s; CACHE_TTL_SECONDS "
        f"{results['cache_ttl_s']}. `commit`: the first write is held inside COMMIT, its revision taken; "
        "`early`: at its first statement on the flag's row.",
        "",
        ordering.summary_table(results),
        "",
        ordering.table(results),
    ]


def reliability(results: dict[str, Any] | None) -> str:
    if results is None or "rate" not in results["plan"]:  # none yet, or from before the drills ran open loop
        return "_No results yet: run `make drill`._"
    plan = results["plan"]
    lines = [
        _machine(results),
        f"{results['servers']} server processes under open-loop load ({plan['rate']:.0f} reads/s each, latency from "
        f"each read's due time); each fault lasts {plan['fault']:.0f} s; the kill switch is flipped "
        f"{plan['flip_after']:.0f} s into it; recovery is waited for up to {plan['recovery_cap']:.0f} s. The failover, "
        "black-hole, Redis Cluster and warm-up drills run on clusters of their own: 2 servers, every read path read "
        "open loop; so does the blue/green cache move (2 servers, 3 in its long form, and two redis-servers).",
        "",
        suite.table(results),
        "",
        "How each fault is produced:",
        "",
        *(f"- {row['title']}: {row['how']}." for row in results["drills"]),
    ]
    return "\n".join(lines)


def warmed(results: dict[str, Any] | None) -> str:
    """The warm-up drill (bench/drills/warmup.py): its one sentence, under the run's machine line."""
    if results is None:
        return warmup.summary(None)
    plan = results["plan"]
    return (f"{_machine(results)} {plan['flags']} flags, {plan['rate']:.0f} requests/s on each of 4 paths of "
            f"2 servers.\n\n{warmup.summary(results['drill'])}")  # fmt: skip


SECTIONS: dict[str, Callable[[Path], str]] = {
    "performance": performance,
    "consistency": _consistency,
    "browser": lambda results_dir: browser_propagation.section(_load(results_dir / "browser.json")),
    "browser-channel": lambda results_dir: browser_propagation.section(_load(results_dir / "browser_channel.json")),
    "reliability": lambda results_dir: reliability(_load(results_dir / "drills.json")),
    "warmup": lambda results_dir: warmed(_load(results_dir / "warmup.json")),
    "bulk-bypass": lambda results_dir: bulk_bypass.section(_load(results_dir / "bulk_bypass.json")),
}


def markers(name: str) -> tuple[str, str]:
    return f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the part between the section's markers replaced by `body`, or the section appended."""
    start, end = markers(name)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text, count=1)
    return text.rstrip("\n") + f"\n\n## {name.capitalize()}\n\n{start}\n{body}\n{end}\n"


def render(text: str, results_dir: Path) -> str:
    for name, build in SECTIONS.items():
        text = replace_section(text, name, build(results_dir))
    return text


def quote_in_docs(results_dir: Path) -> None:
    for path, names in QUOTED.items():
        text = path.read_text()
        for name in names:
            if markers(name)[0] in text:
                text = replace_section(text, name, SECTIONS[name](results_dir))
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.readme.write_text(render(args.readme.read_text(), args.results))
    print(f"updated the generated sections of {args.readme}")
    if args.readme == README:  # the checkout's own docs, never beside a README given for a test
        quote_in_docs(args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
