"""Writes the README's measured numbers from bench/results/*.json, between markers, so none is typed by hand.

    <!-- generated:consistency:start --> ... <!-- generated:consistency:end -->   from propagation.json
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

from bench import browser_propagation, drill, propagation

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


def consistency(results: dict[str, Any] | None) -> str:
    if results is None:
        return "_No results yet: run `make bench-propagation`._"
    plan = results["plan"]
    lines = [
        _machine(results),
        f"One writer and {results['readers']} reader processes, {plan['writes']} writes per scenario; "
        f"target {results['target_seconds']:.0f} s (the contract's bound is 5 s).",
        "",
        propagation.table(results),
    ]
    return "\n".join(lines)


def reliability(results: dict[str, Any] | None) -> str:
    if results is None:
        return "_No results yet: run `make drill`._"
    plan = results["plan"]
    lines = [
        _machine(results),
        f"{results['servers']} server processes under load; each fault lasts {plan['fault']:.0f} s; the kill switch "
        f"is flipped {plan['flip_after']:.0f} s into it; recovery is waited for up to {plan['recovery_cap']:.0f} s.",
        "",
        drill.table(results),
        "",
        "How each fault is produced:",
        "",
        *(f"- {row['title']}: {row['how']}." for row in results["drills"]),
    ]
    return "\n".join(lines)


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any] | None], str]]] = {
    "consistency": ("propagation.json", consistency),
    "browser": ("browser.json", browser_propagation.section),
    "reliability": ("drills.json", reliability),
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
        text = replace_section(text, name, build(_load(results_dir / file)))
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
