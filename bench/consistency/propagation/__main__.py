"""`python -m bench.consistency.propagation [--short]`: the scenarios, then the ordering rounds; their JSON files."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common.results import write_results
from bench.consistency import ordering, propagation
from bench.consistency.propagation.plan import LONG, RESULTS, SHORT
from bench.consistency.propagation.runner import run
from bench.consistency.propagation.tables import shortfalls, table


def _ordering(short: bool, out: Path) -> bool:
    """The out-of-order commit rounds (ordering/) after the scenarios; True if every bar was met."""
    results = ordering.run(ordering.SHORT if short else ordering.LONG)
    print(ordering.summary_table(results) + "\n\n" + ordering.table(results))
    write_results(results, out, form="short" if short else "long")
    return not any(ordering.shortfalls(point) for point in results["points"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=propagation.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="the short form (as make test runs it)")
    parser.add_argument("--servers", type=int, default=4, help="server processes (1 to n-1 are read)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--no-ordering", action="store_true", help="skip the out-of-order commit rounds")
    args = parser.parse_args(argv)
    results = run(SHORT if args.short else LONG, servers=args.servers)
    print(table(results))
    write_results(results, args.out, form="short" if args.short else "long")
    met = not any(shortfalls(row) for row in results["scenarios"])
    if not args.no_ordering:
        met = _ordering(args.short, args.out.parent / ordering.RESULTS.name) and met
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
