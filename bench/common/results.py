"""The one way a harness saves its numbers: bench/results/<name>.json, stamped with the run's form and time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import REPO

RESULTS_DIR = REPO / "bench" / "results"


def results_file(name: str) -> Path:
    """Where `make bench`, `make drill` ... keep a harness's latest results (committed; the README reads them)."""
    return RESULTS_DIR / f"{name}.json"


def stamp(results: dict[str, Any]) -> None:
    results["generated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_results(results: dict[str, Any], out: Path, *, form: str) -> None:
    """Record `form` (short or long, quick or full) and the time in `results`, write them to `out`, say so."""
    results["form"] = form
    stamp(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
