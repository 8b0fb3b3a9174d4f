"""A small TCP fault proxy for drills: put it between the service and Redis (or PostgreSQL), switch faults live.

    proxy = FaultProxy(("127.0.0.1", redis_port)); port = proxy.start()
    proxy.set(Fault(Mode.DELAY, delay_ms=200, direction=Direction.DOWN))   # every reply 200 ms late
    proxy.set(Fault())                                                     # healthy again
    proxy.stop()

Modes are in common/faults.py (delay, drop silently, hold, reset, close after N bytes, bandwidth limit). The proxy
runs an asyncio loop in a thread of its own; drills run it in a separate process (`ProxyProcess`, this
package's CLI), so the load generator's threads cannot slow the proxied traffic down through the GIL.

CLI: `python -m bench.common.faultproxy --upstream 127.0.0.1:6379 [--port 0]` prints `listening <port>`, then
reads one JSON fault per line on stdin (`{"mode": "drop"}`, `{"upstream": "127.0.0.1:6380"}` to send
new connections elsewhere, or `"stats"`) and answers one line each.

Modules: proxy.py (the asyncio proxy), links.py (one proxied connection), process.py (the proxy in a child
process), __main__.py (the child's side: the CLI).
"""

from bench.common.faultproxy.process import ProxyProcess
from bench.common.faultproxy.proxy import FaultProxy, ProxyStats

__all__ = ["FaultProxy", "ProxyProcess", "ProxyStats"]
