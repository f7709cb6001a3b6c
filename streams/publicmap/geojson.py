"""GeoJSON of the residents' map, for the page and for anyone who builds on it (pure).

- municipalities: every boundary of the served packs (code, name, region; a point to put its label on);
- hazard zones: the packs' zones, simplified for display, by kind (浸水想定区域, 土砂災害警戒区域 …);
- alerts: one feature per current public alert, its municipalities' boundaries as the geometry;
- stations: one point per public station with its latest values.

Coordinates are WGS84 lon/lat (RFC 7946), rounded to 5 decimals (about 1 m).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from streams.kernel.region import RegionPack
from streams.publicmap.labels import PageData
from streams.publicmap.view import PublicMap

DECIMALS = 5
ZONE_TOLERANCE_DEG = 0.00005  # about 5 m: zones are drawn, not measured, on the page


def _rounded(geometry: BaseGeometry) -> PageData:
    return mapping(shapely.transform(geometry, lambda coords: np.round(coords, DECIMALS)))


def collection(features: list[PageData]) -> PageData:
    return {"type": "FeatureCollection", "features": features}


def municipalities(packs: Sequence[RegionPack]) -> PageData:
    features = []
    for pack in packs:
        for municipality, boundary in pack.boundaries():
            label = boundary.representative_point()
            features.append(
                {
                    "type": "Feature",
                    "id": municipality.code,
                    "properties": {
                        "code": municipality.code,
                        "name": municipality.name,
                        "city_code": municipality.city_code,
                        "city_name": municipality.city_name,
                        "region": pack.name,
                        "label_lat": round(label.y, DECIMALS),
                        "label_lon": round(label.x, DECIMALS),
                    },
                    "geometry": _rounded(boundary),
                }
            )
    return collection(features)


def hazard_zones(packs: Sequence[RegionPack]) -> PageData:
    features = []
    for pack in packs:
        for zone in pack.zones:
            shape = shapely.simplify(zone.geometry, ZONE_TOLERANCE_DEG, preserve_topology=True)
            features.append(
                {
                    "type": "Feature",
                    "id": zone.ref.zone_id,
                    "properties": {
                        "zone_id": zone.ref.zone_id,
                        "kind": zone.ref.kind,
                        "rank": zone.ref.rank,
                        "name": zone.name,
                        "region": pack.name,
                    },
                    "geometry": _rounded(shape),
                }
            )
    return collection(features)


def alerts(public_map: PublicMap, packs: Sequence[RegionPack]) -> PageData:
    """Current public alerts; each feature's geometry is the MultiPolygon of its municipalities."""
    shapes = {m.code: b for pack in packs for m, b in pack.boundaries()}
    features = []
    for item in public_map.alert_items():
        parts = [
            part
            for m in item["municipalities"]
            if m["code"] in shapes
            for part in getattr(shapes[m["code"]], "geoms", [shapes[m["code"]]])
        ]
        geometry = _rounded(shapely.MultiPolygon(parts)) if parts else None
        features.append({"type": "Feature", "id": item["id"], "properties": item, "geometry": geometry})
    return collection(features)


def stations(public_map: PublicMap) -> PageData:
    """Public stations with their latest values (stations that have reported nothing yet included, empty)."""
    reported = {(s["region"], s["id"]): s for s in public_map.stations()}
    features = []
    for region in public_map.regions.values():
        for station_id in sorted(region.stations):
            station = region.stations[station_id]
            props = reported.get((region.name, station_id)) or {
                "id": station_id,
                "region": region.name,
                "kind": station.kind.value,
                "name": {"ja": station.name, "en": station.name_en or station.name},
                "observed_at": None,
            }
            features.append(
                {
                    "type": "Feature",
                    "id": f"{region.name}:{station_id}",
                    "properties": props,
                    "geometry": {
                        "type": "Point",
                        "coordinates": [round(station.lon, DECIMALS), round(station.lat, DECIMALS)],
                    },
                }
            )
    return collection(features)
