"""The push channel's browser adapter (flag-channel.js) in Node, on a scripted socket: what it passes on.

The socket is a stand-in object (Node 20 has no WebSocket); the channel's messages are fed to it in a given order and
the test reads which `message` events the adapter dispatched, in order.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from flagservice.console.routes import STATIC_DIR

pytestmark = pytest.mark.timeout(60)

SCRIPT = """
class ScriptedSocket {
  constructor() { ScriptedSocket.last = this; }
  send() {}
  close() {}
}
globalThis.WebSocket = ScriptedSocket;
const { ChannelEventSource } = await import("%(static)s/flag-channel.js");
const expiry = Math.floor(Date.now() / 1000) + 3600;
const source = new ChannelEventSource(`ws://127.0.0.1:1/event/realtime?channel=/flags/dev&token=v1.${expiry}.mac`);
const passed = [];
source.addEventListener('message', (event) => passed.push(JSON.parse(event.data).etag ?? null));
const socket = ScriptedSocket.last;
for (const message of JSON.parse(process.argv[1])) socket.onmessage({ data: JSON.stringify(message) });
source.close();
console.log(JSON.stringify(passed));
"""


def passed_on(messages: list[dict[str, Any]]) -> list[str | None]:
    """The etags of the `message` events the adapter dispatched for these channel messages (None: the catch-up)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the adapter's tests need Node 20+")
    script = SCRIPT % {"static": STATIC_DIR.as_uri()}
    done = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(messages)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def subscribed() -> list[dict[str, Any]]:
    return [{"type": "connection_ack", "connectionTimeoutMs": 300000}, {"type": "subscribe_success", "id": "s"}]


def change(revision: int | str) -> dict[str, Any]:
    event = {"type": "refetchEvaluation", "etag": str(revision), "lastModified": 1}
    return {"type": "data", "id": "s", "event": json.dumps(event)}


def test_a_change_message_older_than_one_passed_on_is_dropped() -> None:
    """CI failure: revision 27's message, then a container's owed message for 26 sent again late; the provider
    re-fetched with the last etag (26), a worker still at 26 answered 304, and the page never showed 27."""
    assert passed_on([*subscribed(), change(27), change(26), change(27), change(28)]) == [None, "27", "28"]


def test_every_newer_change_and_each_catch_up_is_passed_on() -> None:
    resubscribed = {"type": "subscribe_success", "id": "t"}

    got = passed_on([*subscribed(), change(3), change(5), change(9), resubscribed, change(4), change("not-a-number")])

    assert got == [None, "3", "5", "9", None, "4", "not-a-number"]  # a new subscription starts its own order
