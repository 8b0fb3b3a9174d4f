"""Writes the README's measured numbers from bench/results/*.json, between markers, so none is typed by hand.

    <!-- generated:consistency:start --> ... <!-- generated:consistency:end -->   from propagation.json, ordering.json
    <!-- generated:browser:start --> ... <!-- generated:browser:end -->           from browser.json
    <!-- generated:reliability:start --> ... <!-- generated:reliability:end -->   from drills.json

Run by `make bench-propagation`, `make bench-browser` and `make drill` after they write their results (never
by `make test`); `python -m bench.readme` regenerates them all from whatever results exist. Only the text between
the markers changes; a missing results file leaves a line saying which command produces it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import browser_propagation, drill, ordering, propagation

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _machine(results: dict[str, Any]) -> str:
    machine = results["machine"]
    return (
        f"Measured {results['generated_at']} ({results['form']} form) on {machine['cpus']} CPUs, Python "
        f"{machine['python']}, Redis {machine['redis']}, PostgreSQL {machine['postgres']}."
    )


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
    """The out-of-order commit rounds (bench/ordering.py)."""
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
        f"{plan['flip_after']:.0f} s into it; recovery is waited for up to {plan['recovery_cap']:.0f} s. The failover "
        "and black-hole drills run on clusters of their own: 2 servers, every read path read open loop.",
        "",
        drill.table(results),
        "",
        "How each fault is produced:",
        "",
        *(f"- {row['title']}: {row['how']}." for row in results["drills"]),
    ]
    return "\n".join(lines)


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any] | None, Path], str]]] = {
    "consistency": ("propagation.json", lambda results, folder: consistency(results, _load(folder / "ordering.json"))),
    "browser": ("browser.json", lambda results, folder: browser_propagation.section(results)),
    "reliability": ("drills.json", lambda results, folder: reliability(results)),
}


def replace_section(text: str, name: str, body: str) -> str:
    """`text` with the part between the section's markers replaced by `body`; ValueError if a marker is missing."""
    start, end = f"<!-- generated:{name}:start -->", f"<!-- generated:{name}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README has no {start} ... {end} markers")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text, count=1)


def render(text: str, results_dir: Path) -> str:
    for name, (file, build) in SECTIONS.items():
        text = replace_section(text, name, build(_load(results_dir / file), results_dir))
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    try:
        updated = render(args.readme.read_text(), args.results)
    except ValueError as error:
        print(f"bench.readme: {error}", file=sys.stderr)
        return 1
    args.readme.write_text(updated)
    print(f"updated the generated sections of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
