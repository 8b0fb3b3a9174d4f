"""A local stand-in of the deployed push channel (AppSync Events, issue 17), for `make dev` and the browser test.

It speaks what the browser adapter (runtime/flagservice/console/static/flag-channel.js) and the publisher speak
to AppSync Events:
- WebSocket on `/event/realtime`, subprotocols `aws-appsync-event-ws` and `header-<base64url JSON>` carrying
  `{"host", "Authorization": <token>}`; `connection_init` → `connection_ack` (connectionTimeoutMs), a `ka`
  every KEEPALIVE_SECONDS, `subscribe` {id, channel, authorization} → `subscribe_success` or
  `subscribe_error`, then `data` {id, event: <JSON string>} for each published event; `unsubscribe`.
- HTTP `POST /event` {"channel", "events": [<JSON string>]} → each event to every subscriber of the channel,
  answered `{"successful": [...], "failed": []}` (deployed, the post is SigV4-signed by the publisher).
The token is checked as the deployed authorizer checks it (flagservice.push.token), on connect and on subscribe.
Like AppSync, it keeps no history: a client catches up by re-fetching when it (re)subscribes.

    python -m local.channel --port 0 [--publish-port 0]   # prints "listening <ws port> <publish port>"
    # settings: PUSH_TOKEN_SECRET, FLAGS_ENV
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from flagservice.push import token
from flagservice.push.publish import channel as channel_of
from local.events import HEAD_LIMIT, read_request

HOST = "127.0.0.1"
PATH = "/event/realtime"
PROTOCOL = "aws-appsync-event-ws"
CONNECTION_TIMEOUT_MS = 300_000
KEEPALIVE_SECONDS = 60.0
MAX_BODY = 64 * 1024
MAX_MESSAGE = 32 * 1024
MAX_SUBSCRIPTIONS = 10  # per connection; a client needs one
SEND_SECONDS = 2.0


@dataclass
class Channel:
    """The environment's one channel: who is subscribed (connection and subscription id), and the credential."""

    secret: bytes
    environment: str
    keepalive: float = KEEPALIVE_SECONDS
    subscribers: dict[tuple[ServerConnection, str], None] = field(default_factory=dict)

    def authorized(self, authorization: Any) -> bool:
        credential = authorization.get("Authorization") if isinstance(authorization, dict) else None
        return token.seconds_left(self.secret, self.environment, credential, now=time.time()) > 0

    async def deliver(self, path: str, events: list[str]) -> None:
        """To every subscriber at once: one slow or stuck client delays nobody else (each send is bounded)."""
        if path != channel_of(self.environment):
            return
        sends = [
            send(connection, {"type": "data", "id": sub_id, "event": event})
            for connection, sub_id in list(self.subscribers)
            for event in events
        ]
        await asyncio.gather(*sends)


async def send(connection: ServerConnection, message: dict[str, Any]) -> None:
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        await asyncio.wait_for(connection.send(json.dumps(message)), SEND_SECONDS)


def header_authorization(request: Request) -> Any:
    """The authorization object a browser puts in its `header-<base64url JSON>` subprotocol (None if absent)."""
    for offered in ",".join(request.headers.get_all("Sec-WebSocket-Protocol")).split(","):
        value = offered.strip()
        if value.startswith("header-"):
            encoded = value.removeprefix("header-")
            with contextlib.suppress(binascii.Error, ValueError):
                return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    return None


def check_path(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?")[0] != PATH:
        return connection.respond(404, "no such route\n")
    return None  # the credential is checked at connection_init, where a browser can see a refusal


def choose_protocol(connection: ServerConnection, offered: Any) -> Any:
    return PROTOCOL if PROTOCOL in offered else None


async def answer(connection: ServerConnection, hub: Channel, message: Any) -> dict[str, Any]:
    """The reply to one client message (AppSync's message types)."""
    kind = message.get("type") if isinstance(message, dict) else None
    sub_id = message.get("id") if isinstance(message, dict) else None
    if kind == "connection_init":
        if connection.request is None or not hub.authorized(header_authorization(connection.request)):
            return {"type": "connection_error", "errors": [{"errorType": "UnauthorizedException"}]}
        return {"type": "connection_ack", "connectionTimeoutMs": CONNECTION_TIMEOUT_MS}
    if kind == "subscribe" and isinstance(sub_id, str) and 0 < len(sub_id) <= 128:
        held = sum(1 for held_by, _ in hub.subscribers if held_by is connection)
        if held >= MAX_SUBSCRIPTIONS:
            return {"type": "subscribe_error", "id": sub_id, "errors": [{"errorType": "LimitExceeded"}]}
        if message.get("channel") != channel_of(hub.environment) or not hub.authorized(message.get("authorization")):
            return {"type": "subscribe_error", "id": sub_id, "errors": [{"errorType": "UnauthorizedException"}]}
        hub.subscribers[(connection, sub_id)] = None
        return {"type": "subscribe_success", "id": sub_id}
    if kind == "unsubscribe" and isinstance(sub_id, str):
        hub.subscribers.pop((connection, sub_id), None)
        return {"type": "unsubscribe_success", "id": sub_id}
    return {"type": "error", "errors": [{"errorType": "UnsupportedOperation", "message": str(kind)[:64]}]}


async def keep_alive(connection: ServerConnection, hub: Channel) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.sleep(hub.keepalive)
            await connection.send('{"type":"ka"}')


async def serve_socket(connection: ServerConnection, hub: Channel) -> None:
    pinger = asyncio.create_task(keep_alive(connection, hub))
    try:
        async for raw in connection:
            with contextlib.suppress(ValueError):
                reply = await answer(connection, hub, json.loads(raw))
                await connection.send(json.dumps(reply))
                if reply["type"] == "connection_error":
                    await connection.close()
    except ConnectionClosed:
        pass
    finally:
        pinger.cancel()
        for key in [key for key in hub.subscribers if key[0] is connection]:
            hub.subscribers.pop(key, None)


def http_answer(status: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n"
    )
    return head.encode() + b"\r\n" + data


async def published(reader: asyncio.StreamReader, hub: Channel) -> bytes:
    """One HTTP publish: `POST /event` with the channel and its events (each a JSON string)."""
    request = await read_request(reader)
    if request is None or request.method != "POST" or request.path != "/event":
        return http_answer("404 Not Found", {"errors": [{"errorType": "NotFound"}]})
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_BODY:
        return http_answer("400 Bad Request", {"errors": [{"errorType": "BadRequest"}]})
    try:
        body = json.loads(await reader.readexactly(int(length)))
        path, events = body["channel"], body["events"]
        if not (isinstance(path, str) and isinstance(events, list) and all(isinstance(e, str) for e in events)):
            raise ValueError("channel and events")
    except (ValueError, KeyError, TypeError, asyncio.IncompleteReadError):
        return http_answer("400 Bad Request", {"errors": [{"errorType": "BadRequest"}]})
    await hub.deliver(path, events)
    done = [{"identifier": str(uuid.uuid4()), "index": index} for index in range(len(events))]
    return http_answer("200 OK", {"successful": done, "failed": []})


async def serve_publish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hub: Channel) -> None:
    try:
        writer.write(await published(reader, hub))
        await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def run(port: int, publish_port: int, hub: Channel) -> None:
    publisher = await asyncio.start_server(lambda r, w: serve_publish(r, w, hub), HOST, publish_port, limit=HEAD_LIMIT)
    async with serve(
        lambda connection: serve_socket(connection, hub), HOST, port, subprotocols=[PROTOCOL],  # type: ignore[list-item]
        select_subprotocol=choose_protocol, process_request=check_path, max_size=MAX_MESSAGE,
    ) as sockets:  # fmt: skip
        ws_port = sockets.sockets[0].getsockname()[1]
        print(f"listening {ws_port} {publisher.sockets[0].getsockname()[1]}", flush=True)
        async with publisher:
            await asyncio.gather(sockets.serve_forever(), publisher.serve_forever())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--publish-port", type=int, default=0)
    parser.add_argument("--keepalive", type=float, default=KEEPALIVE_SECONDS)
    args = parser.parse_args(argv)
    hub = Channel(os.environ["PUSH_TOKEN_SECRET"].encode(), os.environ.get("FLAGS_ENV", "dev"), args.keepalive)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.port, args.publish_port, hub))
    return 0


if __name__ == "__main__":
    sys.exit(main())
