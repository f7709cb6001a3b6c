"""What the soak watches and how it reads the hub like its users do (`bosai bench soak`).

- :func:`process_sample`: resident memory, open file descriptors and threads of a process, from /proc.
- :class:`LagProbe`: consumer lag of the workers' and the sink's groups (:class:`streams.platform.kafka.GroupLag`:
  clients opened once, so the probe adds no connections, hence no descriptors, to the broker between samples).
- :class:`WebhookReceiver`: the subscribers' endpoint: checks each POST's signature, counts deliveries.
- :class:`Readers`: the feed's and the map's clients: Atom feeds with credentials, a CAP document, the map's
  JSON documents, and one live Server-Sent Events stream held open the whole time.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from streams.delivery.webhooks import verify
from streams.platform import kafka


@dataclass(frozen=True)
class ProcSample:
    rss_kb: int
    fds: int
    threads: int


def process_sample(pid: int) -> ProcSample | None:
    """RSS (VmRSS), open descriptors (/proc/PID/fd) and threads of a live process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(re.findall(r"^(VmRSS|Threads):\s+(\d+)", status, re.M))
    if "VmRSS" not in fields:  # a zombie: exited, not yet reaped
        return None
    return ProcSample(int(fields["VmRSS"]), fds, int(fields["Threads"]))


class LagProbe:
    """The lag of each watched group (messages, transaction markers not counted), clients opened once; and the
    sum of each group's committed offsets (``committed``), which shows the probe sees the group at all."""

    def __init__(self, bootstrap: str, admin_bootstrap: str, groups: dict[str, Sequence[str]]):
        self.groups = groups
        self._probe = kafka.GroupLag(bootstrap, admin_bootstrap)

    @property
    def committed(self) -> dict[str, int]:
        return dict(self._probe.committed)

    async def start(self) -> None:
        await self.lag()

    async def stop(self) -> None:
        await self._probe.close()

    async def lag(self) -> dict[str, int]:
        return {g: await self._probe.lag(g, topics, count_records=True) for g, topics in self.groups.items()}


@dataclass
class WebhookReceiver:
    """The subscribers' endpoint (one URL per subscription): signature checked, deliveries counted."""

    secret: str
    deliveries: Counter = field(default_factory=Counter)  # (subscription, alert id, sequence) -> times
    refused: int = 0
    _runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature, stamp = request.headers.get("X-Bosai-Signature", ""), request.headers.get("X-Bosai-Timestamp", "")
        if not verify(self.secret, stamp, body, signature):
            self.refused += 1
            return web.Response(status=401)
        key = (request.match_info["sub"], request.headers["X-Bosai-Alert-Id"], int(request.headers["X-Bosai-Sequence"]))
        self.deliveries[key] += 1
        return web.Response(status=204)

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{sub}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Readers:
    """Clients of the feed and the map, reading as their users do, every ``interval_s``."""

    feed_url: str
    web_url: str
    credentials: dict[str, str]  # principal -> password (public, pref-tochigi, muni-09201)
    interval_s: float = 2.0
    requests: int = 0
    errors: Counter = field(default_factory=Counter)
    live_events: int = 0
    live_reconnects: int = 0
    _tasks: list = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll()), asyncio.create_task(self._live())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _get(self, http: aiohttp.ClientSession, url: str, auth: aiohttp.BasicAuth | None = None) -> bytes:
        self.requests += 1
        try:
            async with http.get(url, auth=auth) as response:
                body = await response.read()
                if response.status != 200:
                    self.errors[f"{response.status} {url.split('?')[0]}"] += 1
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[f"{type(exc).__name__} {url}"] += 1
            return b""

    async def _poll(self) -> None:
        feeds = {
            "public": "/feeds/public.atom",
            "pref-tochigi": "/feeds/prefecture/tochigi.atom",
            "muni-09201": "/feeds/municipality/09201.atom",
        }
        pages = ("api/v1/snapshot.json", "api/v1/alerts.geojson", "api/v1/stations.geojson", "feeds/public.atom")
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                started = time.monotonic()
                for user, path in feeds.items():
                    auth = aiohttp.BasicAuth(user, self.credentials[user])
                    body = await self._get(http, self.feed_url + path, auth)
                    link = re.search(rb'href="([^"]+/cap/[^"]+\.xml)"', body)
                    if link:  # the CAP document of the newest entry, as a reader follows the link
                        await self._get(http, link.group(1).decode(), auth)
                for page in pages:
                    await self._get(http, self.web_url + page)
                await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _live(self) -> None:
        """One browser's live stream, reconnecting with Last-Event-ID as the page does."""
        last_id = None
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                headers = {"Last-Event-ID": last_id} if last_id else {}
                try:
                    async with http.get(self.web_url + "api/v1/events", headers=headers) as response:
                        async for line in response.content:
                            if line.startswith(b"id:"):
                                last_id = line[3:].strip().decode()
                            elif line.startswith(b"event:"):
                                self.live_events += 1
                except (aiohttp.ClientError, TimeoutError):
                    pass
                self.live_reconnects += 1
                await asyncio.sleep(1.0)
