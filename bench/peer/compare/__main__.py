"""`python -m bench.peer.compare [--quick]`: ours against Unleash 8; the tables, then bench/results/peer.json."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.common import http_load
from bench.common.results import write_results
from bench.peer import compare
from bench.peer.compare.plan import FULL, QUICK, RESULTS
from bench.peer.compare.runner import run
from bench.peer.compare.tables import tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=compare.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks the tooling, measures nothing")
    parser.add_argument("--no-wrk", action="store_true")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    use_wrk = not args.no_wrk and http_load.wrk_available()
    results = run(QUICK if args.quick else FULL, workers=args.workers, use_wrk=use_wrk, profile=args.profile)
    print(tables(results))
    write_results(results, args.out, form="quick" if args.quick else "full")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
