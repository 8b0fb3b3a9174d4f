"""Readers of every read path, open loop (openloop.py); each answer becomes one `Read` (load.py) per flag it shows.

Paths (CONTRACT.md section 2):
- single: `GET /flags/{key}`, the keys in turn.
- ofrep: `POST /ofrep/v1/evaluate/flags/{key}`, the keys in turn (disabled: reason `DISABLED`).
- bulk: `POST /ofrep/v1/evaluate/flags`: one Read per flag of the answer.
- conditional: bulk with `If-None-Match: <the last ETag it got>`, as the OFREP web provider sends it. A
  304 means "same as my last body", so a 304's Reads are the last body's flags at the 304's times.

Every bulk reader uses the same context, so one ETag must always name one set of answers: `etag_reuse`
finds ETags that came with different flag lists (a 304 for changed content, seen from the other side).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import FlagServer
from bench.http_load import Target
from bench.load import Read
from bench.measure import percentile
from bench.openloop import OpenLoop, Reply, Stream

PATHS = ("single", "ofrep", "bulk", "conditional")
CONTEXT = {"targetingKey": "harness-user"}
BULK = "/ofrep/v1/evaluate/flags"
EVERY_FLAG = "*"  # the tag (and key) of a bulk request, and of a bulk answer that showed no flags


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


@dataclass(eq=False)
class PathReader:
    """One path read through one server at `rate` requests per second; `reads` grows as answers come."""

    server: FlagServer
    path: str
    keys: Sequence[str] = ()
    rate: float = 20.0
    reads: list[Read] = field(default_factory=list)
    _turn: int = 0
    _last: tuple[str, list[dict[str, Any]]] | None = None  # conditional: (ETag, flags) of the last 200

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"unknown path {self.path!r}")
        if self.path in ("single", "ofrep") and not self.keys:
            raise ValueError(f"the {self.path} path needs keys to read")
        self.stream = Stream(f"{self.path}@{self.server.index}", self.server.index, self.server.port, self.rate,
                             self._build, self._answered)  # fmt: skip

    @property
    def replies(self) -> list[Reply]:
        return self.stream.replies

    def _build(self) -> tuple[str, bytes]:
        port = self.server.port
        if self.path in ("bulk", "conditional"):
            headers = [("Content-Type", "application/json")]
            if self.path == "conditional" and self._last is not None:
                headers.append(("If-None-Match", self._last[0]))
            body = json.dumps({"context": CONTEXT}).encode()
            return EVERY_FLAG, Target(self.path, port, "POST", BULK, tuple(headers), body).request_bytes()
        key, self._turn = self.keys[self._turn % len(self.keys)], self._turn + 1
        if self.path == "single":
            return key, Target(self.path, port, "GET", f"/flags/{key}").request_bytes()
        body = json.dumps({"context": CONTEXT}).encode()
        json_type = (("Content-Type", "application/json"),)
        return key, Target(self.path, port, "POST", f"{BULK}/{key}", json_type, body).request_bytes()

    def _answered(self, reply: Reply) -> None:
        self.reads.extend(self._reads(reply))

    def _read(self, reply: Reply, key: str, version: Any, enabled: bool | None) -> Read:
        return Read(self.server.index, key, reply.sent, reply.end, reply.status,
                    version if isinstance(version, int) else None, reply.headers.get("x-cache", ""), enabled,
                    self.path, reply.scheduled, reply.headers.get("etag", ""))  # fmt: skip

    def _reads(self, reply: Reply) -> list[Read]:
        body = _json(reply.body) if reply.status == 200 else None
        if self.path == "single" and isinstance(body, dict):
            return [self._read(reply, reply.tag, body.get("version"), body.get("enabled"))]
        if self.path == "ofrep" and isinstance(body, dict):
            return [self._item(reply, body)]
        if self.path in ("bulk", "conditional"):
            items = self._bulk_items(reply, body)
            if items is not None:
                return [self._item(reply, item) for item in items]
        return [self._read(reply, reply.tag, None, None)]

    def _item(self, reply: Reply, item: dict[str, Any]) -> Read:
        metadata = item.get("metadata")
        version = metadata.get("version") if isinstance(metadata, dict) else None
        enabled = None if "errorCode" in item else item.get("reason") != "DISABLED"
        return self._read(reply, str(item.get("key", "")), version, enabled)

    def _bulk_items(self, reply: Reply, body: Any) -> list[dict[str, Any]] | None:
        """The flags this answer stands for: its own, or (a 304) the last body's; None if it shows none."""
        if reply.status == 304 and self.path == "conditional" and self._last is not None:
            return self._last[1]
        if not isinstance(body, dict) or not isinstance(body.get("flags"), list):
            return None
        items = [item for item in body["flags"] if isinstance(item, dict)]
        if self.path == "conditional":
            self._last = (reply.headers.get("etag", ""), items)
        return items


def run_readers(readers: Sequence[PathReader], *, timeout: float = 5.0) -> OpenLoop:
    """Start one open loop driving every reader; stop() it when done."""
    return OpenLoop([reader.stream for reader in readers], timeout=timeout).start()


def readers_for(
    servers: Sequence[FlagServer], keys: Sequence[str], rate: float, paths: Sequence[str] = PATHS
) -> list[PathReader]:
    """One reader per server and path, each at `rate` requests per second."""
    return [PathReader(server, path, keys, rate) for server in servers for path in paths]


def flags_digest(body: bytes) -> str | None:
    """A digest of a bulk answer's flag list (key order ignored; other fields, such as stream URLs, left out)."""
    parsed = _json(body)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("flags"), list):
        return None
    items = sorted(parsed["flags"], key=lambda item: str(item.get("key")) if isinstance(item, dict) else "")
    return hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()[:16]


def etag_reuse(readers: Sequence[PathReader]) -> dict[str, int]:
    """ETags that came with more than one flag list (same context everywhere), and how many lists each named."""
    named: dict[str, set[str]] = {}
    for reader in readers:
        if reader.path not in ("bulk", "conditional"):
            continue
        for reply in list(reader.replies):
            digest = flags_digest(reply.body) if reply.status == 200 else None
            if digest is not None and reply.headers.get("etag"):
                named.setdefault(reply.headers["etag"], set()).add(digest)
    return {etag: len(digests) for etag, digests in named.items() if len(digests) > 1}


def reply_summary(replies: Sequence[Reply]) -> dict[str, Any]:
    """Requests, failed ones (no answer, or an answer other than 200/304), latency from schedule p50/p99/max."""
    latencies = [reply.latency for reply in replies]

    def p(rank: float) -> float | None:
        return round(percentile(latencies, rank), 4) if latencies else None

    failed = [reply for reply in replies if reply.status not in (200, 304)]
    return {"requests": len(replies), "failed": len(failed), "p50": p(50), "p99": p(99),
            "max": round(max(latencies), 4) if latencies else None,
            "failures": sorted({reply.error or str(reply.status) for reply in failed})}  # fmt: skip


@dataclass(eq=False)
class ReadLoop:
    """`GET /flags/{key}` through one server, the keys in turn, open loop at `rate` reads per second."""

    server: FlagServer
    keys: Sequence[str]
    rate: float = 50.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self.reader = PathReader(self.server, "single", self.keys, self.rate)
        self._loop: OpenLoop | None = None

    @property
    def reads(self) -> list[Read]:
        return self.reader.reads

    def start(self) -> ReadLoop:
        self._loop = OpenLoop([self.reader.stream], timeout=self.timeout).start()
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()

    def between(self, start: float, end: float) -> list[Read]:
        """Reads that started in [start, end)."""
        return [read for read in list(self.reads) if start <= read.start < end]
