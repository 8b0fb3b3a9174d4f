"""One proxied connection (the client's side and the upstream side), closed or reset as one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass


def abort(writer: asyncio.StreamWriter) -> None:
    """Reset (RST, not FIN): linger on with a zero timeout, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class Link:
    """One proxied connection: the client's side and the upstream side."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for writer in (self.client, self.upstream):
                writer.close()

    def reset(self) -> None:
        if not self.closed:
            self.closed = True
            for writer in (self.client, self.upstream):
                abort(writer)
