"""`bosai web`: the residents' map (住民向け地図) — a public page and its data, live, from public topics only.

One process reads the regions' ``alerts.public`` topics and ``readings.enriched`` topics from the beginning
(no consumer group: the picture is rebuilt in memory on start), keeps following them, and serves

    GET /                                  the page (web/index.html; assets under /static/, ETag)
    GET /api/v1/config.json                regions, labels, credits, the optional tile layer
    GET /api/v1/snapshot.json              everything the page shows, at once
    GET /api/v1/alerts.geojson             current public alerts (their municipalities as geometry)
    GET /api/v1/stations.geojson           public stations with their latest values
    GET /api/v1/municipalities.geojson     municipality boundaries
    GET /api/v1/zones.geojson              hazard zones (浸水想定区域, 土砂災害警戒区域)
    GET /api/v1/events                     the live stream (Server-Sent Events, Last-Event-ID resume)
    GET /feeds/public.atom                 public alerts as Atom, each entry linking its CAP 1.2 message
    GET /cap/<identifier>.xml              one public CAP message
    GET /healthz

No credentials: nothing here is more than public. Readings of stations that are not public are skipped by
their key before decoding, and the core (``streams.publicmap.view``) refuses anything not public again.
Every request passes through one middleware (``guard``): the place for request limits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from streams.delivery import cap
from streams.delivery.atom import render_atom
from streams.delivery.cap import DEFAULT_IDENTITY, CapIdentity
from streams.delivery.cap_english import CapEnglish
from streams.delivery.cap_identity import load_cap_identity
from streams.kernel.errors import BosaiError
from streams.kernel.messages import AvroRecord
from streams.kernel.region import RegionPack
from streams.kernel.topics import HubTopics
from streams.packs.region_pack import load_pack
from streams.platform import health, kafka, metrics
from streams.platform.avro import ALERT, ENRICHED, AvroCodec, CodecError, SchemaStore, default_store
from streams.platform.described import add_openapi
from streams.platform.settings import project_root
from streams.platform.topic_catalog import load_default_catalog
from streams.publicmap import geojson as public_geojson
from streams.publicmap import labels
from streams.publicmap.http import Body, dumps, load_assets, security_headers
from streams.publicmap.labels import PageData
from streams.publicmap.live_stream import LiveStream
from streams.publicmap.view import PublicMap, RegionView

__all__ = ["Body", "WebHandlers", "WebSettings", "WebState", "build_app", "load_assets", "security_headers"]

log = logging.getLogger("bosai.web")

API = "/api/v1"


class WebState:
    """The map, the live stream, and the rendered documents (each rebuilt once per change)."""

    def __init__(self, packs: Sequence[RegionPack], stream: LiveStream, identity: CapIdentity = DEFAULT_IDENTITY):
        self.packs = list(packs)
        self.identity, self.english = identity, CapEnglish.of(packs)
        self.map = PublicMap([RegionView.of(p) for p in packs])
        self.stream = stream
        self._cache: dict[str, tuple[int, Body]] = {}
        self.municipalities = Body.of(dumps(public_geojson.municipalities(packs)), "application/geo+json")
        self.zones = Body.of(dumps(public_geojson.hazard_zones(packs)), "application/geo+json")
        self.sender_names = {p.name: f"{p.prefecture_name} 防災データ連携基盤" for p in packs}
        self.zone_polygons = {p.name: cap.zone_polygons_of(p) for p in packs}
        self.updated_at: float | None = None  # wall clock of the last change (for /healthz)
        self.ready = False  # the topics have been read up to their end once

    def apply(self, *, alerts: Sequence[AvroRecord] = (), readings: Sequence[AvroRecord] = ()) -> None:
        ignored = self.map.ignored
        change = self.map.apply(alerts=alerts, readings=readings)
        if self.map.ignored > ignored:
            kind = "alerts" if alerts else "readings"
            metrics.WEB_IGNORED.labels(kind, "not_public").inc(self.map.ignored - ignored)
        if change.has_alerts:
            self.stream.publish("alerts", dumps(change.alerts_event()))
        if change.stations:
            self.stream.publish("stations", dumps(change.stations_event()))
        if change:
            self.updated_at = time.time()

    def rendered(self, name: str, render: Callable[[], bytes], content_type: str) -> Body:
        version = self.map.version
        cached = self._cache.get(name)
        if cached is None or cached[0] != version:
            body = Body.of(render(), content_type, etag=f'W/"{self.stream.epoch}-{version}"')
            self._cache[name] = cached = (version, body)
        return cached[1]

    def snapshot_bytes(self) -> bytes:
        return self.rendered("snapshot", lambda: dumps(self.map.snapshot()), "application/json").data


def page_config(
    packs: Sequence[RegionPack], tile_url: str | None, tile_attribution: str, heartbeat_s: float
) -> PageData:
    return {
        "regions": [
            {
                "name": p.name,
                "prefecture_name": p.prefecture_name,
                "bounds": [[p.index.bounds[1], p.index.bounds[0]], [p.index.bounds[3], p.index.bounds[2]]],
            }
            for p in packs
        ],
        "tones": [{"key": key, "label": label} for key, label in labels.TONES.items()],
        "credits": list(labels.CREDITS),
        "hub_note": labels.HUB_NOTE,
        "tiles": {"url": tile_url, "attribution": tile_attribution} if tile_url else None,
        "heartbeat_s": heartbeat_s,
        "feed": "/feeds/public.atom",
    }


class WebHandlers:
    """Every route of the page: request handling lives here, behind one middleware."""

    def __init__(self, state: WebState, assets: dict[str, Body], config: PageData, headers: dict[str, str]) -> None:
        self.state, self.assets, self.headers = state, assets, headers
        self.config = Body.of(dumps(config), "application/json")

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """In front of every request: security headers (and, later, request limits)."""
        response = await handler(request)
        if not response.prepared:
            response.headers.update(self.headers)
            if request.path.startswith((API, "/feeds/", "/cap/")):
                response.headers["Access-Control-Allow-Origin"] = "*"  # open data: anyone may build on it
        return response

    async def index(self, request: web.Request) -> web.Response:
        return self.assets["index.html"].respond(request)

    async def asset(self, request: web.Request) -> web.Response:
        body = self.assets.get(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound(text="no such file\n")
        return body.respond(request)

    async def config_json(self, request: web.Request) -> web.Response:
        return self.config.respond(request)

    async def snapshot(self, request: web.Request) -> web.Response:
        state = self.state
        return state.rendered("snapshot", lambda: dumps(state.map.snapshot()), "application/json").respond(request)

    async def alerts_geojson(self, request: web.Request) -> web.Response:
        state = self.state

        def render() -> bytes:
            return dumps(public_geojson.alerts(state.map, state.packs))

        return state.rendered("alerts", render, "application/geo+json").respond(request)

    async def stations_geojson(self, request: web.Request) -> web.Response:
        state = self.state

        def render() -> bytes:
            return dumps(public_geojson.stations(state.map))

        return state.rendered("stations", render, "application/geo+json").respond(request)

    async def municipalities_geojson(self, request: web.Request) -> web.Response:
        return self.state.municipalities.respond(request)

    async def zones_geojson(self, request: web.Request) -> web.Response:
        return self.state.zones.respond(request)

    async def events(self, request: web.Request) -> web.StreamResponse:
        return await self.state.stream.handle(request, self.state.snapshot_bytes)

    async def public_atom(self, request: web.Request) -> web.Response:
        state, base = self.state, f"{request.scheme}://{request.host}"

        def render() -> bytes:
            return render_atom(
                state.map.public_feed(),
                feed_id=state.identity.urn("feed:public"),
                identity=state.identity,
                title="bosai hub: public alerts (防災情報・公開)",
                self_url=f"{base}/feeds/public.atom",
                cap_url=f"{base}/cap/{{identifier}}.xml",
            )

        return state.rendered(f"atom:{base}", render, "application/atom+xml").respond(request)

    async def cap_message(self, request: web.Request) -> web.Response:
        record = self.state.map.cap_record(request.match_info["identifier"])
        if record is None:
            raise web.HTTPNotFound(text="no such public CAP message\n")
        body = cap.render(
            record,
            sender_name=self.state.sender_names.get(record["region"], ""),
            identity=self.state.identity,
            english=self.state.english,
            zone_polygons=self.state.zone_polygons.get(record["region"]),
        )
        return web.Response(body=body, content_type="application/cap+xml", charset="utf-8")

    async def healthz(self, _request: web.Request) -> web.Response:
        public_map = self.state.map
        return web.json_response(
            {
                "ready": self.state.ready,
                "alerts": len(public_map.current_records()),
                "stations": len(public_map.station_values),
                "live_clients": len(self.state.stream.clients),
                "version": public_map.version,
                "data_time": max(public_map.data_time.values(), default=None),
            },
            headers={"Cache-Control": "no-store"},
        )


def build_app(handlers: WebHandlers) -> web.Application:
    app = web.Application(middlewares=[handlers.guard])
    routes = [
        ("/", handlers.index),
        ("/static/{name:.+}", handlers.asset),
        (f"{API}/config.json", handlers.config_json),
        (f"{API}/snapshot.json", handlers.snapshot),
        (f"{API}/alerts.geojson", handlers.alerts_geojson),
        (f"{API}/stations.geojson", handlers.stations_geojson),
        (f"{API}/municipalities.geojson", handlers.municipalities_geojson),
        (f"{API}/zones.geojson", handlers.zones_geojson),
        (f"{API}/events", handlers.events),
        ("/feeds/public.atom", handlers.public_atom),
        ("/cap/{identifier}.xml", handlers.cap_message),
        ("/healthz", handlers.healthz),
    ]
    for path, handler in routes:
        app.router.add_get(path, handler)
    add_openapi(app, "web")

    async def start_stream(_app: web.Application) -> None:
        handlers.state.stream.start()

    async def end_streams(_app: web.Application) -> None:
        await handlers.state.stream.stop()

    app.on_startup.append(start_stream)
    app.on_shutdown.append(end_streams)
    return app


# -- following the topics -------------------------------------------------------------------------------


async def follow(
    bootstrap: str,
    topics: Sequence[str],
    decode: Callable[[kafka.Record], AvroRecord | None],
    apply: Callable[[list[AvroRecord]], None],
    ready: asyncio.Event,
) -> None:
    """Read the topics from the beginning, then keep following them; each batch is applied at once."""
    async with kafka.patient_consumer("following " + ", ".join(topics), bootstrap, *topics) as consumer:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            records = [r for messages in batches.values() for m in messages if (r := decode(m)) is not None]
            if records:
                apply(records)
            if not batches and not ready.is_set():
                ready.set()


def decoder(
    codec: AvroCodec, topic_kind: str, keys: dict[str, set[bytes]] | None = None
) -> Callable[[kafka.Record], AvroRecord | None]:
    """Decode a message, or None (counted and logged) when it is not for the map or cannot be read."""

    def decode(message: kafka.Record) -> AvroRecord | None:
        if keys is not None and message.key not in keys.get(message.topic, ()):
            metrics.WEB_IGNORED.labels(topic_kind, "station_not_public").inc()
            return None  # a station that is not public: not even decoded
        try:
            return codec.decode(message.value)
        except CodecError as exc:
            metrics.WEB_IGNORED.labels(topic_kind, "undecodable").inc()
            log.warning(
                "skipping undecodable record at %s/%d@%d: %s", message.topic, message.partition, message.offset, exc
            )
            return None

    return decode


@dataclass
class WebSettings:
    """Everything a `bosai web` process needs (JSON on the command line of a started process)."""

    pack_dirs: list[str]
    topic_prefix: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    tile_url: str | None = None
    tile_attribution: str = ""
    max_clients: int = 10_000
    queue_limit: int = 64
    heartbeat_s: float = 10.0
    web_dir: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "streams.publicmap.server", json.dumps(asdict(self))]


async def serve_web(
    settings: WebSettings, bootstrap: str, store: SchemaStore, progress: Callable[[str], None], stop: asyncio.Event
) -> None:
    """Serve until ``stop`` is set: the topics are read from the beginning first, then followed."""
    packs = [load_pack(d) for d in settings.pack_dirs]
    catalog = load_default_catalog(settings.topic_prefix)
    topic_sets = [HubTopics.for_region(catalog, p) for p in packs]
    assets = load_assets(Path(settings.web_dir) if settings.web_dir else project_root() / "web")
    stream = LiveStream(
        queue_limit=settings.queue_limit, heartbeat_s=settings.heartbeat_s, max_clients=settings.max_clients
    )
    state = WebState(packs, stream, load_cap_identity())
    stream.data_time = lambda: max(state.map.data_time.values(), default=None)
    config = page_config(packs, settings.tile_url, settings.tile_attribution, settings.heartbeat_s)
    app = build_app(WebHandlers(state, assets, config, security_headers(settings.tile_url)))
    followers, ready = _followers(bootstrap, store, packs, topic_sets, state)
    health.READINESS.waiting("alerts_loaded", "reading the public topics from the beginning")
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.port
    try:
        await _until_ready_or_stopped(ready, followers, stop)
        if stop.is_set():
            return
        state.ready = True
        health.READINESS.ok("alerts_loaded", f"{len(state.map.current_records())} public alerts")
        progress(
            f"web: http://{settings.host}:{port}/ — {len(state.map.current_records())} public alerts and "
            f"{len(state.map.station_values)} public stations loaded from {len(topic_sets)} region(s); Ctrl-C stops"
        )
        await _until_stopped(followers, stop)
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        await runner.cleanup()
        progress(
            f"web: stopped — {len(state.map.current_records())} current public alerts, "
            f"{len(state.map.station_values)} stations with values, {stream.seq} live-stream events sent"
        )


def _followers(
    bootstrap: str, store: SchemaStore, packs: Sequence[RegionPack], topic_sets: Sequence[HubTopics], state: WebState
) -> tuple[list[asyncio.Task[None]], list[asyncio.Event]]:
    """Two consumers, so a flood of readings never delays an alert: the public alerts, and the readings
    (of public stations only, told apart by their key)."""
    public_keys = {
        t.enriched: {sid.encode() for sid, s in p.stations.items() if s.is_public}
        for p, t in zip(packs, topic_sets, strict=True)
    }
    ready = [asyncio.Event(), asyncio.Event()]
    tasks = [
        asyncio.create_task(
            follow(
                bootstrap,
                [t.public for t in topic_sets],
                decoder(AvroCodec(store, ALERT), "alerts"),
                lambda records: state.apply(alerts=records),
                ready[0],
            )
        ),
        asyncio.create_task(
            follow(
                bootstrap,
                [t.enriched for t in topic_sets],
                decoder(AvroCodec(store, ENRICHED), "readings", public_keys),
                lambda records: state.apply(readings=records),
                ready[1],
            )
        ),
    ]
    return tasks, ready


async def _until_ready_or_stopped(
    events: list[asyncio.Event], tasks: list[asyncio.Task[None]], stop: asyncio.Event
) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    stopping = asyncio.create_task(stop.wait())
    try:
        while not all(e.is_set() for e in events):
            await asyncio.wait([*waits, *tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
            _raise_if_ended(tasks)
            if stop.is_set():
                return
    finally:
        for wait in [*waits, stopping]:
            wait.cancel()


async def _until_stopped(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
        _raise_if_ended(tasks)
    finally:
        stopping.cancel()


def _raise_if_ended(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and (error := task.exception()) is not None:
            if isinstance(error, BosaiError):  # e.g. the cluster away past the patience: exit 3, as it says
                raise error
            raise BosaiError(f"following the topics failed: {error!r}")


def run_web(settings: WebSettings, bootstrap: str, say: Callable[[str], None]) -> None:
    """Run the page until SIGTERM or SIGINT."""
    if settings.metrics_port is not None:
        port = metrics.serve(settings.metrics_port, settings.metrics_host)
        say(f"metrics on http://{settings.metrics_host}:{port}/metrics (and /healthz, /readyz)")

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        beat = health.start_heartbeat()
        try:
            await serve_web(settings, bootstrap, default_store(), say, stop)
        finally:
            beat.cancel()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    """Entry point of a web process started by `bosai demo` or the tests (see WebSettings.command)."""
    from streams.platform.broker import resolve_bootstrap

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = sys.argv[1:] if argv is None else argv
    settings = WebSettings(**json.loads(args[0]))
    try:
        run_web(settings, resolve_bootstrap(), say=lambda line: print(line, file=sys.stderr, flush=True))
    except BosaiError as exc:
        print(f"bosai web: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
