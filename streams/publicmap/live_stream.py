"""The residents' map's live stream: Server-Sent Events with resume, heartbeats and bounded clients.

Every change is one event with an id ``<epoch>-<n>`` (``epoch`` is this process's start, so ids of an
earlier process never match). A client that reconnects with ``Last-Event-ID`` gets the events it missed
when they are still held (the last ``history`` events), otherwise a full ``snapshot`` first. Each client
has a queue of at most ``queue_limit`` events: a client that cannot keep up is dropped (its browser
reconnects and resumes), never buffered without end; a write that has not finished after
``write_timeout_s`` drops it too. A ``heartbeat`` event (no id) goes to every client every
``heartbeat_s`` seconds, so the page can tell it is live and a dead connection is noticed.

Per event and client the cost is one queue hand-over and one write: no timer or task per message (the
heartbeats and the write watchdog are one task for all clients).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from streams.platform import metrics

log = logging.getLogger("bosai.web")

_DROP = b""  # the queue's sentinel: end this client's stream


def sse_event(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One event in the text/event-stream format (``data`` is one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + data + b"\n\n"


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    dropped: str | None = None
    task: asyncio.Task[web.StreamResponse] | None = None  # the request handler serving it
    writing_since: float | None = None  # monotonic time a write began, while it has not finished


class LiveStream:
    """Fan-out of change events to every connected page; bounded per client."""

    def __init__(
        self,
        *,
        history: int = 1024,
        queue_limit: int = 64,
        heartbeat_s: float = 10.0,
        write_timeout_s: float = 10.0,
        max_clients: int = 10_000,
        data_time: Callable[[], int | None] = lambda: None,
    ):
        self.epoch = str(int(time.time() * 1000))
        self.seq = 0
        self.backlog: deque[tuple[int, bytes]] = deque(maxlen=history)
        self.queue_limit = queue_limit
        self.heartbeat_s = heartbeat_s
        self.write_timeout_s = write_timeout_s
        self.max_clients = max_clients
        self.data_time = data_time
        self.clients: set[_Client] = set()
        self.dropped = 0
        self._beats: asyncio.Task[None] | None = None

    @property
    def last_id(self) -> str:
        return f"{self.epoch}-{self.seq}"

    def start(self) -> None:
        """Heartbeats and the write watchdog (call on the running loop)."""
        if self._beats is None:
            self._beats = asyncio.create_task(self._heartbeats())

    async def stop(self) -> None:
        self.close_all()
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.gather(self._beats, return_exceptions=True)
            self._beats = None

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            self._broadcast(self._heartbeat())
            stuck = time.monotonic() - self.write_timeout_s
            for client in list(self.clients):
                if client.writing_since is not None and client.writing_since < stuck:
                    self._drop(client, "write_timeout")

    def publish(self, event: str, data: bytes) -> None:
        """Send an event to every client now (no awaiting: clients that are full are dropped)."""
        self.seq += 1
        chunk = sse_event(event, data, self.last_id)
        self.backlog.append((self.seq, chunk))
        self._broadcast(chunk)
        metrics.WEB_EVENTS.labels(event).inc()

    def _broadcast(self, chunk: bytes) -> None:
        for client in list(self.clients):
            if client.dropped is not None:
                continue
            if client.queue.qsize() >= self.queue_limit:
                self._drop(client, "slow")
            else:
                client.queue.put_nowait(chunk)

    def _drop(self, client: _Client, reason: str) -> None:
        if client.dropped is None:
            client.dropped = reason
            self.dropped += 1
            metrics.WEB_DROPPED.labels(reason).inc()
            while not client.queue.empty():
                client.queue.get_nowait()
            client.queue.put_nowait(_DROP)
            if client.writing_since is not None and client.task is not None:
                client.task.cancel()  # stuck in a write to a client that does not read

    def close_all(self) -> None:
        for client in list(self.clients):
            self._drop(client, "shutdown")

    def missed_since(self, last_event_id: str | None) -> list[bytes] | None:
        """The events after ``last_event_id`` when they are all still held; None when a snapshot is needed."""
        if not last_event_id:
            return None
        epoch, _, seq_text = last_event_id.strip().partition("-")
        if epoch != self.epoch or not (seq_text.isascii() and seq_text.isdigit() and len(seq_text) <= 18):
            return None  # ('²' is a digit to isdigit() and not to int())
        seq = int(seq_text)
        if seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.backlog or self.backlog[0][0] > seq + 1:
            return None
        return [chunk for n, chunk in self.backlog if n > seq]

    def _heartbeat(self) -> bytes:
        return sse_event(
            "heartbeat", json.dumps({"server_time": int(time.time() * 1000), "data_time": self.data_time()}).encode()
        )

    async def handle(self, request: web.Request, snapshot: Callable[[], bytes]) -> web.StreamResponse:
        """Serve one client until it goes away, falls behind, or the server stops."""
        if len(self.clients) >= self.max_clients:
            metrics.WEB_DROPPED.labels("refused").inc()
            raise web.HTTPServiceUnavailable(headers={"Retry-After": "30"}, text="too many live clients\n")
        last_event_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        missed = self.missed_since(last_event_id)
        first = missed if missed is not None else [sse_event("snapshot", snapshot(), self.last_id)]
        client = _Client(task=asyncio.current_task())  # registered in the same step as the snapshot
        self.clients.add(client)
        metrics.WEB_CLIENTS.set(len(self.clients))
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache, no-transform",
                "X-Accel-Buffering": "no",  # nginx: pass events through, do not buffer them
            }
        )
        try:
            await response.prepare(request)
            await self._write(client, response, b"retry: 3000\n\n" + b"".join(first))
            while (chunk := await client.queue.get()) != _DROP:
                await self._write(client, response, chunk)
        except asyncio.CancelledError:
            if client.dropped is None:
                raise  # the server is stopping
            if request.transport is not None:
                request.transport.abort()  # a client that stopped reading: close it, do not wait on it
        except ConnectionError:
            pass  # the client went away
        finally:
            self.clients.discard(client)
            metrics.WEB_CLIENTS.set(len(self.clients))
        return response

    @staticmethod
    async def _write(client: _Client, response: web.StreamResponse, chunk: bytes) -> None:
        client.writing_since = time.monotonic()
        await response.write(chunk)
        client.writing_since = None
