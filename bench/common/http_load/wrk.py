"""Closed-loop throughput with Debian's `wrk`: a Lua `done()` hook prints its summary as one JSON line."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common.http_load.connection import Target

WRK_SCRIPT = """
wrk.method = "{method}"
{body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d}},"latency_us":{{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def wrk_script(target: Target) -> str:
    body = f"wrk.body = {_lua_string(target.body.decode())}" if target.body else ""
    headers = "\n".join(f"wrk.headers[{_lua_string(n)}] = {_lua_string(v)}" for n, v in target.headers)
    return WRK_SCRIPT.format(method=target.method, body=body, headers=headers)


def run_wrk(
    target: Target, *, connections: int = 16, threads: int = 2, duration: float = 10.0, timeout: float = 5.0
) -> dict[str, Any]:
    """Closed-loop throughput: `connections` keep-alive connections, each sending as soon as answered."""
    with tempfile.TemporaryDirectory(prefix="flagservice-wrk-") as folder:
        script = Path(folder) / "target.lua"
        script.write_text(wrk_script(target))
        argv = ["wrk", f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
        argv += [f"--timeout={max(1, round(timeout))}s", "-s", str(script), target.url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:] or done.stdout[-500:]}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    failed = sum(raw["errors"].values())
    return {
        "target": target.name, "connections": connections, "threads": min(threads, connections),
        "duration_s": round(seconds, 2), "requests": raw["requests"], "errors": raw["errors"],
        "requests_per_s": round((raw["requests"] - raw["errors"]["status"]) / seconds, 1) if seconds else 0.0,
        "failed": failed,
        **{f"{k}_ms": round(v / 1000, 3) for k, v in raw["latency_us"].items()},
    }  # fmt: skip
