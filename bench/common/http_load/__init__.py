"""HTTP load for the benchmarks: sequential, open loop (constant arrival rate), and wrk (closed loop).

- `sequential`: one keep-alive connection, one request at a time; each request's latency.
- `open_loop`: requests are due at a constant rate, whatever the server does (no coordinated
  omission): request i is due at start + i / rate and its latency is measured from that intended
  time, so time spent queued behind a slow answer counts. One thread, non-blocking, keep-alive
  connections opened on demand up to a limit. The generator reports its own lag behind schedule
  (how late it noticed each request was due: its own slowness, not the server's), the send delay
  (due until written: includes waiting for a free connection), its CPU use and the rate achieved.
- `run_wrk`: Debian's `wrk` for closed-loop throughput at N connections, with a Lua `done()` hook
  that prints its summary as one JSON line.

All latencies go into HDR histograms (hdr.py). Only 127.0.0.1 is ever addressed.

Modules: connection.py (the request, the answer's parser, a keep-alive connection), sequential_load.py,
constant_rate.py (open loop), wrk.py, summary.py (the fields every run reports).
"""

from bench.common.http_load.connection import HOST, ResponseParser, Target, one_request
from bench.common.http_load.constant_rate import open_loop
from bench.common.http_load.sequential_load import sequential
from bench.common.http_load.summary import failures
from bench.common.http_load.wrk import run_wrk, wrk_available, wrk_script

__all__ = [
    "HOST", "ResponseParser", "Target", "failures", "one_request", "open_loop", "run_wrk", "sequential",
    "wrk_available", "wrk_script",
]  # fmt: skip
