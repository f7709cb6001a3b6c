"""`bosai history serve`: the archive's public data as OGC API - Features, for GIS tools (QGIS, GDAL's OAPIF
driver, OpenLayers …).

    GET /                                      landing page (links: the API, conformance, collections)
    GET /conformance                           Core, GeoJSON
    GET /collections                           stations, municipalities, alerts, readings
    GET /collections/{id}                      one, with its spatial and temporal extent
    GET /collections/{id}/items                GeoJSON; bbox, datetime, limit, offset (next/prev links);
                                               readings also station_id
    GET /collections/{id}/items/{featureId}    one feature
    GET /openapi.json                          the API (openapi/history.yaml)

Read-only: the archive is read through its committed manifest (DuckDB, in a thread so the loop stays free);
public data only (public stations, alerts of sharing level PUBLIC and status Actual).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import shapely
from aiohttp import web
from shapely.geometry import mapping

from streams.history import ogc
from streams.history.query import (
    BBox,
    Filter,
    QueryError,
    in_bbox,
    page_links,
    parse_bbox,
    parse_datetime,
    parse_limit,
    parse_offset,
)
from streams.history.reader import ArchiveReader
from streams.history.rows import alert_line
from streams.kernel.region import RegionPack
from streams.platform import health
from streams.platform.described import add_openapi

log = logging.getLogger("bosai.history")
Progress = Callable[[str], None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(document: Any, *, status: int = 200, content_type: str = ogc.JSON) -> web.Response:
    return web.Response(
        text=json.dumps(document, ensure_ascii=False),
        status=status,
        content_type=content_type,
        headers={"Access-Control-Allow-Origin": "*"},
    )


def _problem(status: int, detail: str) -> web.Response:
    return _json({"code": str(status), "description": detail}, status=status)


class HistoryService:
    """The packs' public stations and municipalities (in memory), and the archive (read per request)."""

    def __init__(self, packs: Sequence[RegionPack], history: Path):
        self.packs = list(packs)
        self.reader = ArchiveReader(history)
        self.public_stations = tuple(sorted(s.station_id for p in packs for s in p.stations.values() if s.is_public))
        self.stations: list[ogc.Document] = [
            {
                "type": "Feature",
                "id": s.station_id,
                "geometry": ogc.point(s.lon, s.lat),
                "properties": {
                    "station_id": s.station_id,
                    "name": s.name,
                    "name_en": s.name_en,
                    "kind": str(s.kind),
                    "region": p.name,
                    "municipality_code": s.municipality_code,
                    "alt_m": s.alt_m,
                },
            }
            for p in packs
            for s in sorted(p.stations.values(), key=lambda s: s.station_id)
            if s.is_public
        ]
        self.municipalities: list[tuple[ogc.Document, tuple[float, float, float, float]]] = []
        for pack in packs:
            for municipality, boundary in pack.boundaries():
                feature = {
                    "type": "Feature",
                    "id": municipality.code,
                    "geometry": mapping(shapely.set_precision(boundary, 1e-6)),
                    "properties": {
                        "code": municipality.code,
                        "name": municipality.name,
                        "city_code": municipality.city_code,
                        "city_name": municipality.city_name,
                        "region": pack.name,
                    },
                }
                west, south, east, north = boundary.bounds
                self.municipalities.append((feature, (west, south, east, north)))

    # -- extents ------------------------------------------------------------------------------------------------
    def bbox_of(self, collection: str) -> list[float] | None:
        if collection == "municipalities":
            bounds = [b for _, b in self.municipalities]
        else:
            bounds = [
                (f["geometry"]["coordinates"][0], f["geometry"]["coordinates"][1]) * 2
                for f in self.stations
                if f["geometry"]
            ]
        if not bounds:
            return None
        return [
            min(b[0] for b in bounds),
            min(b[1] for b in bounds),
            max(b[2] for b in bounds),
            max(b[3] for b in bounds),
        ]

    def interval_of(self, collection: str) -> tuple[int, int] | None:
        if collection == "alerts":
            return self.reader.time_extent("alerts", public=True)
        if collection == "readings":
            return self.reader.time_extent("readings")
        return None

    # -- items ----------------------------------------------------------------------------------------------------
    def filter_for(
        self, collection: str, bbox: BBox | None, since: int | None, until: int | None, station: str | None
    ) -> Filter:
        if collection == "alerts":
            return Filter("alerts", since_ms=since, until_ms=until, until_inclusive=True, bbox=bbox, public=True)
        stations = self.public_stations if station is None else tuple(s for s in self.public_stations if s == station)
        return Filter("readings", since_ms=since, until_ms=until, until_inclusive=True, bbox=bbox, station_ids=stations)

    def archived_items(self, collection: str, where: Filter, limit: int, offset: int) -> tuple[list[ogc.Document], int]:
        rows = self.reader.rows(where, limit=limit, offset=offset)
        matched = self.reader.count(where)
        if collection == "alerts":
            return [ogc.alert_feature(alert_line(r), r["lon"], r["lat"]) for r in rows], matched
        return [ogc.reading_feature(r) for r in rows], matched

    def static_items(self, collection: str, bbox: BBox | None) -> list[ogc.Document]:
        if collection == "stations":
            return [f for f in self.stations if f["geometry"] and in_bbox(bbox, f["geometry"]["coordinates"] * 2)]
        return [f for f, bounds in self.municipalities if in_bbox(bbox, bounds)]

    def one(self, collection: str, feature_id: str) -> ogc.Document | None:
        if collection in ("stations", "municipalities"):
            return next((f for f in self.static_items(collection, None) if f["id"] == feature_id), None)
        parts = ogc.feature_id(feature_id)
        if parts is None:
            return None
        if collection == "alerts":
            rows = self.reader.rows(Filter("alerts", public=True, alert=parts), limit=1)
            return ogc.alert_feature(alert_line(rows[0]), rows[0]["lon"], rows[0]["lat"]) if rows else None
        station, at = parts
        if station not in self.public_stations:
            return None
        where = Filter("readings", since_ms=at, until_ms=at, until_inclusive=True, station_ids=(station,))
        rows = self.reader.rows(where, limit=1)
        return ogc.reading_feature(rows[0]) if rows else None


class HistoryHandlers:
    def __init__(self, service: HistoryService):
        self.service = service

    @staticmethod
    def base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    async def landing(self, request: web.Request) -> web.Response:
        return _json(ogc.landing(self.base(request)))

    async def conformance(self, _request: web.Request) -> web.Response:
        return _json(ogc.conformance())

    async def _described(self, base: str, item: ogc.Collection) -> ogc.Document:
        interval = await asyncio.to_thread(self.service.interval_of, item.id)
        return ogc.collection(base, item, self.service.bbox_of(item.id), interval)

    async def collections(self, request: web.Request) -> web.Response:
        base = self.base(request)
        described = [await self._described(base, item) for item in ogc.COLLECTIONS]
        return _json(ogc.collections(base, described))

    async def collection(self, request: web.Request) -> web.Response:
        item = ogc.BY_ID.get(request.match_info["collection"])
        if item is None:
            return _problem(404, f"no collection {request.match_info['collection']!r}")
        return _json(await self._described(self.base(request), item))

    async def items(self, request: web.Request) -> web.Response:
        name = request.match_info["collection"]
        item = ogc.BY_ID.get(name)
        if item is None:
            return _problem(404, f"no collection {name!r}")
        query = request.query
        try:
            limit, offset = parse_limit(query.get("limit")), parse_offset(query.get("offset"))
            bbox = parse_bbox(",".join(query.getall("bbox", [])) or None)  # also bbox=…&bbox=… (exploded)
            since, until = parse_datetime(query.get("datetime"))
        except QueryError as exc:
            return _problem(400, str(exc))
        if item.temporal:
            where = self.service.filter_for(name, bbox, since, until, query.get("station_id"))
            features, matched = await asyncio.to_thread(self.service.archived_items, name, where, limit, offset)
        else:
            everything = self.service.static_items(name, bbox)
            features, matched = everything[offset : offset + limit], len(everything)
        base = f"{self.base(request)}/collections/{name}/items"
        links = page_links(base, dict(query), offset=offset, limit=limit, returned=len(features), matched=matched)
        stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        document = ogc.feature_collection(features, links, matched=matched, timestamp=stamp)
        return _json(document, content_type=ogc.GEOJSON)

    async def feature(self, request: web.Request) -> web.Response:
        name = request.match_info["collection"]
        if name not in ogc.BY_ID:
            return _problem(404, f"no collection {name!r}")
        found = await asyncio.to_thread(self.service.one, name, request.match_info["feature"])
        if found is None:
            return _problem(404, f"no feature {request.match_info['feature']!r} in {name}")
        base = self.base(request)
        found["links"] = [
            {"href": f"{base}/collections/{name}/items/{found['id']}", "rel": "self", "type": ogc.GEOJSON},
            {"href": f"{base}/collections/{name}", "rel": "collection", "type": ogc.JSON},
        ]
        return _json(found, content_type=ogc.GEOJSON)


def build_app(service: HistoryService) -> web.Application:
    handlers = HistoryHandlers(service)
    app = web.Application()
    get = app.router.add_get
    get("/", handlers.landing)
    get("/conformance", handlers.conformance)
    get("/collections", handlers.collections)
    get("/collections/{collection}", handlers.collection)
    get("/collections/{collection}/items", handlers.items)
    get("/collections/{collection}/items/{feature}", handlers.feature)
    add_openapi(app, "history")
    return app


async def serve_history(
    service: HistoryService, *, host: str, port: int, stop: asyncio.Event, progress: Progress = lambda _m: None
) -> None:
    """Serve until ``stop`` is set."""
    health.READINESS.waiting("archive", f"reading {service.reader.store.manifest_path}")
    manifest = await asyncio.to_thread(service.reader.manifest)
    health.READINESS.ok("archive", f"manifest #{manifest.sequence}: {len(manifest.files)} file(s)")
    runner = web.AppRunner(build_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    progress(
        f"history: OGC API - Features on http://{host}:{bound}/ ({len(manifest.files)} archived file(s)); Ctrl-C stops"
    )
    started = time.monotonic()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        log.info("history server ran %.0f s", time.monotonic() - started)
