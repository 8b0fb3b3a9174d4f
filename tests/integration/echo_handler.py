"""A stand-in Lambda handler for the local server's own tests: it answers with what it was given.

Routes (by path): anything else echoes the event as JSON; `/multi` answers with repeated headers;
`/binary` answers base64-encoded bytes; `/crash` raises; `/malformed` returns a non-proxy result;
`/barrier?dir=D&n=N&timeout=S` waits until N requests are inside the handler at once (or S seconds),
which proves concurrency without timing anything.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

BINARY = bytes(range(256))


def _json(body: Any, status: int = 200, **extra: Any) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body), **extra}


def _barrier(query: dict[str, str]) -> dict[str, Any]:
    """Wait until `n` requests are inside at once; a request that finds a left-over entry does not count it."""
    folder, needed = Path(query["dir"]), int(query["n"])
    me, met = uuid.uuid4().hex, folder / "met"
    (folder / f"in-{me}").touch()
    deadline = time.monotonic() + float(query.get("timeout", "5"))
    while not met.exists() and time.monotonic() < deadline:
        inside = len(list(folder.glob("in-*"))) - len(list(folder.glob("out-*")))
        if inside >= needed:
            met.touch()
        time.sleep(0.01)
    (folder / f"out-{me}").touch()
    return _json({"pid": os.getpid(), "met": met.exists()})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path = event["path"]
    if path == "/multi":
        return {
            "statusCode": 200,
            "headers": {"X-Single": "one", "Set-Cookie": "ignored=1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Listed": ["x", "y"]},
            "body": "",
        }
    if path == "/binary":
        body = base64.b64encode(BINARY).decode()
        return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"}, "body": body,
                "isBase64Encoded": True}  # fmt: skip
    if path == "/crash":
        raise RuntimeError("the stand-in handler crashed on purpose")
    if path == "/malformed":
        return {"body": {"not": "a string"}}
    if path == "/barrier":
        return _barrier(event["queryStringParameters"])
    remaining = context.get_remaining_time_in_millis()
    return _json({"event": event, "pid": os.getpid(), "remainingMs": remaining}, headers={"X-Echo": "yes"})
