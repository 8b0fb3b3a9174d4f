"""The child's side of ProxyProcess: `python -m bench.common.faultproxy --upstream HOST:PORT [--port N]`."""

from __future__ import annotations

import argparse
import json
import sys

from bench.common import faultproxy
from bench.common.faultproxy.proxy import FaultProxy
from bench.common.faults import Fault


def _serve_control(proxy: FaultProxy) -> None:
    """One JSON command per stdin line, one answer per line; EOF stops the proxy."""
    for line in sys.stdin:
        try:
            spec = json.loads(line)
            if spec == "stats":
                print("ok " + json.dumps(proxy.snapshot()), flush=True)
                continue
            if isinstance(spec, dict) and set(spec) == {"upstream"}:
                host, _, port = str(spec["upstream"]).rpartition(":")
                proxy.retarget((host, int(port)))
                print("ok", flush=True)
                continue
            proxy.set(Fault.parse(spec))
            print("ok", flush=True)
        except (ValueError, TypeError) as error:
            print(f"error {error}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=faultproxy.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", required=True, help="host:port to forward to")
    parser.add_argument("--port", type=int, default=0, help="port of 127.0.0.1 to listen on (0: any free one)")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    proxy = FaultProxy((host, int(port)), port=args.port)
    print(f"listening {proxy.start()}", flush=True)
    try:
        _serve_control(proxy)
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
