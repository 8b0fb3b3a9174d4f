"""Where a Python server's time goes: py-spy samples a running process tree; the stacks are summed by layer.

`py-spy record --subprocesses --nonblocking --format raw` samples the local server's workers without
stopping them (idle samples, a worker waiting in select, are left out by py-spy itself). Each
sample is charged to one layer: walking from the innermost frame outwards, the first frame that
belongs to a known layer (below) takes it, so the standard library is charged to whoever called it
(json.dumps inside Metrics is Metrics). Also reported: the functions present in the most samples
(inclusive share).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# Checked in this order for each frame: the more specific first.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("socket send/receive (system calls; on a busy machine, also waiting for a CPU)", ("/socket.py", "socket.py")),
    ("HTTP server (wsgiref, http.server, prefork loop)",
     ("local/prefork/", "wsgiref/", "http/server.py", "socketserver.py", "email/", "http/client.py")),
    ("gateway: HTTP request -> API Gateway event -> HTTP answer", ("local/",)),
    ("Powertools Logger (inject_lambda_context, log records)", ("aws_lambda_powertools/logging/",)),
    ("Powertools Metrics (EMF serialization, print)", ("aws_lambda_powertools/metrics/",)),
    ("Powertools Tracer / X-Ray SDK", ("aws_lambda_powertools/tracing/", "aws_xray_sdk/")),
    ("Powertools resolver (routing, event data classes, Response)",
     ("aws_lambda_powertools/event_handler/", "aws_lambda_powertools/utilities/", "aws_lambda_powertools/shared/")),
    ("redis-py (client, pool, protocol; and waiting for Redis, when idle samples are kept)", ("redis/",)),
    ("psycopg (PostgreSQL client)", ("psycopg/", "psycopg_pool/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("flag service: handler, routes, cache path, evaluation", ("flagservice/",)),
)  # fmt: skip
STRUCTURE = ("<frozen runpy>", "local/server.py", "local/prefork/", "BaseHandler.run (")
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")


def pyspy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def start_recording(pid: int, seconds: float, out: Path, *, rate: int = 250) -> subprocess.Popen[str] | None:
    """Start sampling `pid` and its children for `seconds`; None when py-spy is not installed."""
    exe = pyspy()
    if exe is None:
        return None
    argv = [exe, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--format", "raw"]
    argv += ["--rate", str(rate), "--duration", str(max(1, round(seconds))), "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_recording(process: subprocess.Popen[str] | None, out: Path, *, timeout: float = 60.0) -> dict[str, Any]:
    """Wait for py-spy; the summary of what it recorded, or why there is none."""
    if process is None:
        return {"error": "py-spy is not installed"}
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    if process.returncode != 0 or not out.exists():
        return {"error": f"py-spy failed ({process.returncode}): {output.strip()[-400:]}"}
    return summarize(out.read_text())


def _frames(stack: str) -> list[tuple[str, str]]:
    frames = []
    for part in stack.split(";"):
        match = FRAME.match(part)
        if match:
            frames.append((match["func"], match["file"]))
    return frames


def layer_of(file: str) -> str | None:
    for name, patterns in LAYERS:
        if any(pattern in file for pattern in patterns):
            return name
    return None


def summarize(raw: str, *, top: int = 15, within: str | None = None) -> dict[str, Any]:
    """Shares of samples per layer (innermost known frame) and per function (anywhere in the stack).

    With `within`, only the samples taken inside a function of that name count (e.g. a timed loop).
    """
    layers: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count, frames = int(count_text), _frames(stack)
        if within is not None and not any(func == within for func, _ in frames):
            continue
        total += count
        owner = next((layer for _, file in reversed(frames) if (layer := layer_of(file))), "other")
        layers[owner] += count
        for name in {f"{func} ({file})" for func, file in frames}:
            inclusive[name] += count
        if frames:
            leaves[f"{frames[-1][0]} ({frames[-1][1]})"] += count
    if not total:
        return {"samples": 0, "layers": {}, "functions": {}, "self": {}}
    return {
        "samples": total,
        "layers": {name: round(100 * n / total, 1) for name, n in layers.most_common()},
        "functions": _top_functions(inclusive, total, top),
        "self": {name: round(100 * n / total, 1) for name, n in leaves.most_common(top)},
    }


def _top_functions(inclusive: Counter[str], total: int, top: int) -> dict[str, float]:
    """The functions in the most samples, leaving out the server's own loop (the frames every sample shares)."""
    shown = {}
    for name, count in inclusive.most_common():
        if count >= 0.99 * total or any(outer in name for outer in STRUCTURE):
            continue
        shown[name] = round(100 * count / total, 1)
        if len(shown) == top:
            break
    return shown


def table(summary: dict[str, Any]) -> str:
    if summary.get("error"):
        return f"(no profile: {summary['error']})"
    lines = [f"{summary['samples']} samples (busy workers only)", "", "| layer | share of busy time |", "|---|---|"]
    lines += [f"| {name} | {share:.1f} % |" for name, share in summary["layers"].items()]
    lines += ["", "| function (inclusive: in the stack) | share |", "|---|---|"]
    lines += [f"| `{name}` | {share:.1f} % |" for name, share in summary["functions"].items()]
    lines += ["", "| function (self: innermost frame) | share |", "|---|---|"]
    lines += [f"| `{name}` | {share:.1f} % |" for name, share in summary["self"].items()]
    return "\n".join(lines)
