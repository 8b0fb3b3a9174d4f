"""Cold start of the Lambda handler: a fresh process imports it and answers its first request; what each import costs.

Measured as Lambda's init runs it: the environment is Lambda's (so the import also runs `warm()`,
the time-boxed prefetch), and modules load from bytecode, as the bundle ships it (stacks/bytecode.py):
the runs share a private `PYTHONPYCACHEPREFIX` that a first, uncounted run fills. (A single run, the
quick form, skips that: it checks the tooling and measures nothing; our own modules then compile.) Three phases per
run: interpreter start (process spawn to the first line of the script), handler import (with
`warm()`), first request (GET /flags/{key}, through the handler, Redis and PostgreSQL). The median of
`repeats` runs is reported. The import costs come from `python -X importtime`, summed per top-level
package (the standard library as one line), median over the runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import REPO

SCRIPT = r"""
import json, sys, time
began = time.time()
start = time.perf_counter()
from flagservice import handler
imported = time.perf_counter()
from bench.perf.container import flag_event, rss_kib, x_cache
from flagservice.lambda_context import LocalContext
event, context = flag_event(sys.argv[2]), LocalContext()
asked = time.perf_counter()
answer = handler.lambda_handler(event, context)
answered = time.perf_counter()
result = {"began": began, "import_s": imported - start, "first_request_s": answered - asked,
          "answer": x_cache(answer), **rss_kib()}
open(sys.argv[1], "w").write(json.dumps(result))
"""


def _env(base: dict[str, str], pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _one_run(env: dict[str, str], key: str, workdir: Path) -> dict[str, Any]:
    out = workdir / "cold.json"
    spawned = time.time()
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), key], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, timeout=120,
    )  # fmt: skip
    run: dict[str, Any] = json.loads(out.read_text())
    run["interpreter_s"] = max(0.0, run.pop("began") - spawned)
    run["total_s"] = run["interpreter_s"] + run["import_s"] + run["first_request_s"]
    return run


def measure(env: dict[str, str], key: str, *, repeats: int = 3) -> dict[str, Any]:
    """Median interpreter start, import (with warm) and first request over `repeats` fresh processes."""
    with tempfile.TemporaryDirectory(prefix="flagservice-coldstart-") as folder:
        workdir = Path(folder)
        if repeats > 1:
            env = _env(env, workdir / "pycache")
            _one_run(env, key, workdir)  # fills the bytecode cache; not counted
        runs = [_one_run(env, key, workdir) for _ in range(repeats)]
        imports = [import_costs(env) for _ in range(repeats)]
    keys = ("interpreter_s", "import_s", "first_request_s", "total_s")
    summary: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 4) for k in keys}
    summary["rss_kib_after_first_request"] = int(statistics.median(r["rss_kib"] for r in runs))
    summary["answers"] = sorted({r["answer"] for r in runs})
    summary["runs"] = repeats
    summary["imports_ms"] = _median_costs(imports)
    return summary


def import_costs(env: dict[str, str]) -> dict[str, float]:
    """Self time of every module `import flagservice.handler` loads, summed per top-level package (ms)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import flagservice.handler"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True, timeout=120,
    )  # fmt: skip
    return parse_importtime(done.stderr)


def parse_importtime(text: str) -> dict[str, float]:
    stdlib = set(sys.stdlib_module_names) | {"_distutils_hack", "encodings", "site", "sitecustomize"}
    costs: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line[len("import time:") :].split("|")
        if len(fields) != 3:
            continue
        top = fields[2].strip().split(".")[0]
        costs["(standard library)" if top in stdlib else top] += int(fields[0]) / 1000
    return dict(costs)


def _median_costs(runs: list[dict[str, float]]) -> dict[str, float]:
    names = {name for run in runs for name in run}
    medians = {name: round(statistics.median(run.get(name, 0.0) for run in runs), 1) for name in names}
    ordered = dict(sorted(medians.items(), key=lambda item: -item[1]))
    ordered["total"] = round(sum(medians.values()), 1)
    return ordered


if __name__ == "__main__":
    print(json.dumps(measure(dict(os.environ), sys.argv[1] if len(sys.argv) > 1 else "bench-flag"), indent=2))
