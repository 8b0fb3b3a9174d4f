"""The listening socket shared by the workers, and accepting a connection from it."""

from __future__ import annotations

import select
import socket
from typing import Any

READ_TIMEOUT_SECONDS = 30.0  # any one receive or send


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The listening socket, bound before any worker exists, so requests queue while workers start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def accept_one(sock: socket.socket) -> tuple[socket.socket, Any]:
    """Accept a connection with Nagle disabled and a read timeout, so a slow client cannot hold a worker forever."""
    conn, address = sock.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.settimeout(READ_TIMEOUT_SECONDS)
    return conn, address


def readable(sock: socket.socket) -> bool:
    """True if `sock` has bytes to read (or an end of file) right now."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False
