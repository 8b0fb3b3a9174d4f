"""Benchmarks, consistency harnesses and fault drills (`make bench`, `make drill`); runtime/ never imports it.

common/ holds what they share (servers, clients, load, faults, measures, tables, the results writer);
perf/, http/, peer/, consistency/ and drills/ each hold one concern; readme.py writes their numbers
into README.md.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # the checkout: servers run from it; results and README are written in it
