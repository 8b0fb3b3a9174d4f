"""`python -m bench.consistency.ordering [--short] [--points ...]`: the rounds, their tables, ordering.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common.results import write_results
from bench.consistency import ordering
from bench.consistency.dbhold import POINTS
from bench.consistency.ordering.plan import LONG, RESULTS, SHORT
from bench.consistency.ordering.runner import run
from bench.consistency.ordering.tables import shortfalls, summary_table, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=ordering.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short form (as make test runs it)")
    parser.add_argument("--points", nargs="*", default=list(POINTS), help="hold points to run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    results = run(SHORT if args.short else LONG, tuple(args.points))
    print(summary_table(results) + "\n\n" + table(results))
    write_results(results, args.out, form="short" if args.short else "long")
    return 0 if not any(shortfalls(point) for point in results["points"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
