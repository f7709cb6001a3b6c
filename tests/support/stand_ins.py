"""Stand-ins for JMA's public feeds (not reachable from these machines), on a local HTTP server.

They implement exactly the documented requests and layouts, and check what they get:

* **JMA's Atom PULL feed** (``/developer/xml/feed/extra.xml`` short, ``extra_l.xml`` long, reports under
  ``/developer/xml/data/``): Atom 1.0 as JMA publishes it (entry title = Control/Title, id = link =
  the report's URL, updated, author), ``Last-Modified`` and ``If-Modified-Since`` → ``304``. The short
  feed lists only the entries published in its window (JMA's covers about ten minutes), the long one
  all. The reports are JMA's real samples (data/jma/).
* **AMeDAS** (``/bosai/amedas/data/latest_time.txt``, ``map/YYYYMMDDHHmm00.json``): map files generated
  from the real AMeDAS CSV (data/amedas/, hourly) in JMA's layout — ``{"<station>": {"precipitation1h":
  [value, 0], "precipitation24h": [value, 0]}}``, ``[null, 5]`` where JMA published no value; the
  10-minute steps between hours have no file here (404).

Requests that JMA's servers would not answer sensibly (a method other than GET, a malformed path, a
map time off the 10-minute grid or after latest_time.txt, a malformed If-Modified-Since) are recorded
in ``violations``; tests assert there are none. Faults are injected per path: ``500``, ``slow`` (no
answer within the client's timeout), ``truncated`` (a body cut short of its Content-Length), and the
whole server can go ``down()`` (connection refused) and come back ``up()`` on the same port.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import re
import threading
import time
from collections import defaultdict
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from aiohttp import web

from streams.kernel.times import JST

ATOM_NS = "http://www.w3.org/2005/Atom"
MAP_PATH = re.compile(r"^/bosai/amedas/data/map/(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.json$")


class StandIn:
    """A local HTTP server on its own thread and event loop (reachable from subprocesses too)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port: int | None = None
        self.runner: web.AppRunner | None = None
        self.requests: list[tuple[str, str, dict]] = []
        self.violations: list[str] = []
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.slow_s = 5.0
        self.delay_s: dict[str, float] = {}  # path prefix -> delay before every answer (to widen windows)

    # -- lifecycle --------------------------------------------------------------------------------------
    def _call(self, coroutine):  # noqa: ANN001, ANN202
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def up(self) -> str:
        async def start() -> int:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self.runner = web.AppRunner(app, handle_signals=False)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", self.port or 0)
            await site.start()
            return site._server.sockets[0].getsockname()[1]

        self.port = self._call(start())
        return self.url

    def down(self) -> None:
        if self.runner is not None:
            self._call(self.runner.cleanup())
            self.runner = None

    def close(self) -> None:
        self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    # -- serving ----------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path, dict(request.headers)))
        if request.method != "GET":
            self.violations.append(f"{request.method} {path}")
            return web.Response(status=405)
        for prefix, delay in self.delay_s.items():
            if path.startswith(prefix):
                await asyncio.sleep(delay)
        fault = self.faults[path].pop(0) if self.faults.get(path) else None
        if fault == "500":
            return web.Response(status=500, text="internal error (stand-in fault)")
        if fault == "slow":
            await asyncio.sleep(self.slow_s)
        status, body, headers = self.answer(request)
        if fault == "truncated" and status == 200:
            response = web.StreamResponse(status=200, headers={**headers, "Content-Length": str(len(body))})
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            request.transport.close()
            return response
        return web.Response(status=status, body=body, headers=headers)

    def answer(self, request: web.Request) -> tuple[int, bytes, dict]:
        self.violations.append(f"unknown path {request.path}")
        return 404, b"", {}


class JmaFeed(StandIn):
    """JMA's Atom PULL feed and its reports."""

    FEED, LONG, DATA = "/developer/xml/feed/extra.xml", "/developer/xml/feed/extra_l.xml", "/developer/xml/data/"

    def __init__(self, short_window_s: float = 600.0) -> None:
        super().__init__()
        self.short_window_s = short_window_s
        self.entries: list[dict] = []  # title, name, body, published (wall s), updated (report's DateTime)
        self.last_modified = time.time()

    def publish(self, name: str, body: bytes) -> str:
        """A report appears in the feeds; returns its URL (the entry id)."""
        text = body.decode("utf-8")
        title = re.search(r"<Control>\s*<Title>([^<]+)</Title>", text).group(1)
        updated = re.search(r"<Control>.*?<DateTime>([^<]+)</DateTime>", text, re.S).group(1)
        office = re.search(r"<EditorialOffice>([^<]+)</EditorialOffice>", text).group(1)
        self.entries.append(
            {"title": title, "name": name, "body": body, "published": time.time(), "updated": updated, "office": office}
        )
        self.last_modified = max(time.time(), self.last_modified + 1)  # HTTP dates have whole seconds
        return f"{self.url}{self.DATA}{name}"

    def atom(self, entries: list[dict]) -> bytes:
        items = "".join(
            f"<entry><title>{e['title']}</title><id>{self.url}{self.DATA}{e['name']}</id>"
            f"<updated>{e['updated']}</updated><author><name>{e['office']}</name></author>"
            f'<link type="application/xml" href="{self.url}{self.DATA}{e["name"]}"/>'
            f'<content type="text">【{e["title"]}】</content></entry>'
            for e in reversed(entries)  # newest first, as JMA lists them
        )
        now = datetime.fromtimestamp(self.last_modified, JST).isoformat(timespec="seconds")
        return (
            f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="{ATOM_NS}" lang="ja"><title>高頻度（随時）</title>'
            f"<subtitle>JMAXML publishing feed</subtitle><updated>{now}</updated><id>urn:uuid:stand-in</id>"
            f'<link href="{self.url}{self.FEED}" rel="self"/><rights type="html">出典：気象庁</rights>{items}</feed>'
        ).encode()

    def answer(self, request: web.Request) -> tuple[int, bytes, dict]:
        path = request.path
        if path in (self.FEED, self.LONG):
            modified = format_datetime(datetime.fromtimestamp(int(self.last_modified), JST).astimezone(), usegmt=True)
            since = request.headers.get("If-Modified-Since")
            if since is not None:
                try:
                    if parsedate_to_datetime(since).timestamp() >= int(self.last_modified):
                        return 304, b"", {"Last-Modified": modified}
                except (TypeError, ValueError):
                    self.violations.append(f"If-Modified-Since {since!r} is not an HTTP date")
            horizon = time.time() - self.short_window_s
            shown = self.entries if path == self.LONG else [e for e in self.entries if e["published"] >= horizon]
            return 200, self.atom(shown), {"Last-Modified": modified, "Content-Type": "application/atom+xml"}
        if path.startswith(self.DATA):
            found = next((e for e in self.entries if e["name"] == path[len(self.DATA) :]), None)
            if found is not None:
                return 200, found["body"], {"Content-Type": "application/xml"}
            return 404, b"", {}
        return super().answer(request)


class AmedasData(StandIn):
    """AMeDAS latest_time.txt and 10-minute map files, generated from the real hourly CSV."""

    BASE = "/bosai/amedas/data"

    def __init__(self, csv_path: Path, start_ms: int, end_ms: int) -> None:
        super().__init__()
        self.maps: dict[int, dict] = defaultdict(dict)
        with gzip.open(csv_path, "rt", encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                ms = int(datetime.fromisoformat(row["observed_at"]).timestamp() * 1000)
                if start_ms <= ms <= end_ms:
                    self.maps[ms][row["station_id"]] = {
                        "precipitation1h": _pair(row["precip_1h_mm"]),
                        "precipitation24h": _pair(row["precip_24h_mm"]),
                    }
        self.latest_ms = end_ms
        self.broken_layout: set[int] = set()  # times served in a changed layout

    def answer(self, request: web.Request) -> tuple[int, bytes, dict]:
        path = request.path
        if path == f"{self.BASE}/latest_time.txt":
            text = datetime.fromtimestamp(self.latest_ms / 1000, JST).isoformat()
            return 200, text.encode(), {"Content-Type": "text/plain"}
        match = MAP_PATH.match(path)
        if match is None:
            return super().answer(request)
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        ms = int(datetime(year, month, day, hour, minute, second, tzinfo=JST).timestamp() * 1000)
        if second or minute % 10:
            self.violations.append(f"{path}: not on the 10-minute grid")
        if ms > self.latest_ms:
            self.violations.append(f"{path}: after latest_time.txt")
        if ms in self.broken_layout:
            changed = {sid: {"rain": {"1h": v["precipitation1h"][0]}} for sid, v in self.maps.get(ms, {}).items()}
            return 200, json.dumps(changed).encode(), {"Content-Type": "application/json"}
        if ms not in self.maps:
            return 404, b"", {}
        return 200, json.dumps(self.maps[ms], separators=(",", ":")).encode(), {"Content-Type": "application/json"}


def _pair(text: str) -> list:
    text = (text or "").strip()
    return [float(text), 0] if text else [None, 5]
