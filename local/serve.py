"""Serve any Lambda handler over HTTP the way `sam local start-api` would, with no stores attached.

`make dev` (server.py) adds the embedded servers, migrations and demo flags around `serve()`. This
module alone is what tests and benchmarks use to put a stand-in handler behind the same gateway:

    python -m local.serve tests.integration.echo_handler.lambda_handler --port 0 --workers 2
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable

from local.gateway import LambdaGateway, LambdaHandler
from local.prefork.supervisor import PreforkServer

DEFAULT_HANDLER = "flagservice.handler.lambda_handler"
HOST = "127.0.0.1"


def load_handler(path: str) -> LambdaHandler:
    """Import `package.module.function` (or `package.module:function`) in this process, before workers fork."""
    module_name, _, attribute = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise ValueError(f"not a handler path: {path!r} (expected package.module.function)")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise ValueError(f"{path} is not callable")
    return handler  # type: ignore[no-any-return]


def serve(handler: LambdaHandler, *, port: int, workers: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Bind, announce the URL through `on_ready`, and serve until SIGINT/SIGTERM/SIGHUP has stopped every worker."""
    server = PreforkServer(LambdaGateway(handler), host=HOST, port=port, workers=workers)
    if on_ready is not None:
        on_ready(f"http://{HOST}:{server.port}")
    server.run()


class FieldsFormatter(logging.Formatter):
    """A log line with the record's extra fields appended as key=value (log with fields, never f-strings)."""

    STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - the stdlib's name
        fields = {k: v for k, v in vars(record).items() if k not in self.STANDARD}
        return super().formatMessage(record) + "".join(f" {k}={v}" for k, v in fields.items())


def configure_logging() -> None:
    """The local server's own messages go to stderr as plain lines; the handler logs JSON through Powertools."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    local = logging.getLogger("local")
    local.handlers[:] = [handler]
    local.setLevel(os.environ.get("DEV_LOG_LEVEL", "INFO").upper())
    local.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("handler", nargs="?", default=DEFAULT_HANDLER)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", os.cpu_count() or 1)))
    args = parser.parse_args(argv)
    configure_logging()
    handler = load_handler(args.handler)
    serve(handler, port=args.port, workers=args.workers, on_ready=lambda url: print(f"serving {url}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
