"""The fault proxy itself: an asyncio loop in a thread of its own, forwarding connections under the current fault."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common.faultproxy.links import Link, abort
from bench.common.faults import Direction, Fault, Mode, Pacer, Plan

HOST = "127.0.0.1"
CHUNK = 65536
CONNECT_TIMEOUT = 5.0
CLOSE = None  # queue sentinel: everything before it is sent, then the connection closes


@dataclass
class ProxyStats:
    accepted: int = 0
    open: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped_bytes: int = 0


@dataclass
class FaultProxy:
    """Listens on 127.0.0.1 and forwards each connection to `upstream`, applying the current fault."""

    upstream: tuple[str, int]
    port: int = 0
    fault: Fault = field(default_factory=Fault)
    stats: ProxyStats = field(default_factory=ProxyStats)
    _generation: int = 0
    _links: set[Link] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.base_events.Server | None = None
    _thread: threading.Thread | None = None
    _flowing: asyncio.Event | None = None  # cleared while the mode is HOLD

    def start(self) -> int:
        """Start the loop thread and listen; returns the port."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._server is None:
            raise RuntimeError("the fault proxy did not start")
        return self.port

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, HOST, self.port))
        self.port = int(self._server.sockets[0].getsockname()[1])
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _call(self, action: Callable[[], Any]) -> Any:
        """Run `action` on the loop thread and wait for it: a mode switch has happened when set() returns."""
        assert self._loop is not None

        async def run() -> Any:
            return action()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def set(self, fault: Fault) -> None:
        """Switch the mode for open and new connections; RESET resets every open connection now."""
        self._call(lambda: self._switch(fault))

    def _switch(self, fault: Fault) -> None:
        self.fault, self._generation = fault, self._generation + 1
        assert self._flowing is not None
        if fault.mode is Mode.HOLD:
            self._flowing.clear()
        else:
            self._flowing.set()  # what was held goes on, in order
        if fault.mode is Mode.RESET:
            for link in list(self._links):
                link.reset()

    def retarget(self, upstream: tuple[str, int]) -> None:
        """New connections go to `upstream` (an endpoint switched to another server); open ones are reset."""

        def switch() -> None:
            self.upstream = upstream
            for link in list(self._links):
                link.reset()

        self._call(switch)

    def snapshot(self) -> dict[str, Any]:
        return self._call(lambda: {**vars(self.stats), "mode": self.fault.mode.value})

    def stop(self) -> None:
        """Close the listener and every connection, then end the loop thread."""
        if self._loop is None or self._thread is None:
            return

        async def shut() -> None:
            assert self._server is not None
            self._server.close()
            for link in list(self._links):
                link.close()
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            if pending:
                _, late = await asyncio.wait(pending, timeout=2)
                for task in late:
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        if self.fault.mode is Mode.RESET:
            abort(writer)
            return
        try:
            opened = asyncio.open_connection(*self.upstream)
            up_reader, up_writer = await asyncio.wait_for(opened, CONNECT_TIMEOUT)
        except (TimeoutError, OSError):
            writer.close()
            return
        link = Link(writer, up_writer)
        self._links.add(link)
        self.stats.open += 1
        try:
            await asyncio.gather(self._pump(link, reader, up_writer, Direction.UP),
                                 self._pump(link, up_reader, writer, Direction.DOWN))  # fmt: skip
        finally:
            link.close()
            self._links.discard(link)
            self.stats.open -= 1

    async def _pump(
        self, link: Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        """Read chunks, plan each under the current fault, and queue them for the sender (which keeps order)."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._send(link, queue, writer))
        pacer = Pacer(direction)
        try:
            while not link.closed and (data := await reader.read(CHUNK)):
                plan = pacer.plan(self.fault, self._generation, len(data), asyncio.get_running_loop().time())
                if self._carry_out(link, plan, data, queue, direction):
                    break
        except (ConnectionError, OSError):
            link.reset()
        finally:
            queue.put_nowait(CLOSE)
            await sender

    def _carry_out(self, link: Link, plan: Plan, data: bytes, queue: asyncio.Queue[Any], direction: Direction) -> bool:
        """Queue the plan's slices; True when the connection must end after them."""
        if plan.reset:
            link.reset()
            return True
        if plan.dropped:
            self.stats.dropped_bytes += len(data)
            return False
        offset = 0
        for due, count in plan.slices:
            queue.put_nowait((due, data[offset : offset + count]))
            offset += count
        if direction is Direction.UP:
            self.stats.bytes_up += offset
        else:
            self.stats.bytes_down += offset
        return plan.close

    async def _send(self, link: Link, queue: asyncio.Queue[Any], writer: asyncio.StreamWriter) -> None:
        """Send queued slices in order, each at its due time; at the sentinel, close the whole connection."""
        loop = asyncio.get_running_loop()
        try:
            while (item := await queue.get()) is not CLOSE:
                due, data = item
                if math.isinf(due):
                    assert self._flowing is not None
                    await self._flowing.wait()
                elif due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if link.closed:
                    continue
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            link.reset()
        finally:
            link.close()
