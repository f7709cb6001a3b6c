"""OGC API - Features over the archive, as documents (Part 1: the Core and GeoJSON conformance classes; the
API itself is described in OpenAPI 3.1, ``openapi/history.yaml``).

Four collections, public data only: ``stations`` (the packs' public stations), ``municipalities`` (their
boundaries), ``alerts`` (archived alert events of sharing level PUBLIC and status Actual) and ``readings``
(archived readings of the public stations). Coordinates are lon/lat (OGC:CRS84). The server
(:mod:`streams.history.server`) fills these with what it reads; nothing here reads anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.kernel.times import jst_iso

Document = dict[str, Any]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
GEOJSON = "application/geo+json"
JSON = "application/json"


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    temporal: bool  # items have a time: the datetime filter applies


COLLECTIONS = (
    Collection("stations", "Stations", "The regions' public gauges (rain, river level) and where they are.", False),
    Collection("municipalities", "Municipalities", "Municipal (and ward) boundaries of the regions.", False),
    Collection(
        "alerts",
        "Alerts",
        "Archived public alert events (sharing level PUBLIC, status Actual): the hub's own and JMA's relayed.",
        True,
    ),
    Collection("readings", "Readings", "Archived readings of the public stations (missing values stay null).", True),
)
BY_ID = {c.id: c for c in COLLECTIONS}


def _link(href: str, rel: str, kind: str, title: str) -> Document:
    return {"href": href, "rel": rel, "type": kind, "title": title}


def landing(base: str) -> Document:
    return {
        "title": "bosai hub archive (OGC API - Features)",
        "description": "The disaster-data hub's archive: public stations, municipalities, alerts and readings.",
        "links": [
            _link(f"{base}/", "self", JSON, "this document"),
            _link(f"{base}/openapi.json", "service-desc", "application/vnd.oai.openapi+json;version=3.1", "the API"),
            _link(f"{base}/conformance", "conformance", JSON, "conformance classes"),
            _link(f"{base}/collections", "data", JSON, "the collections"),
        ],
    }


def conformance() -> Document:
    return {"conformsTo": list(CONFORMANCE)}


def collection(base: str, item: Collection, bbox: Sequence[float] | None, interval: tuple[int, int] | None) -> Document:
    """One collection's description, with its spatial and (for alerts and readings) temporal extent."""
    extent: Document = {"spatial": {"bbox": [list(bbox) if bbox else [-180.0, -90.0, 180.0, 90.0]], "crs": CRS84}}
    if item.temporal:
        extent["temporal"] = {
            "interval": [[jst_iso(interval[0]), jst_iso(interval[1])] if interval else [None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return {
        "id": item.id,
        "title": item.title,
        "description": item.description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            _link(f"{base}/collections/{item.id}", "self", JSON, item.title),
            _link(f"{base}/collections/{item.id}/items", "items", GEOJSON, f"{item.title} as GeoJSON"),
        ],
    }


def collections(base: str, described: Sequence[Document]) -> Document:
    return {"links": [_link(f"{base}/collections", "self", JSON, "the collections")], "collections": list(described)}


def feature_collection(
    features: Sequence[Document], links: Sequence[Document], *, matched: int | None, timestamp: str
) -> Document:
    document: Document = {
        "type": "FeatureCollection",
        "features": list(features),
        "links": list(links),
        "timeStamp": timestamp,
        "numberReturned": len(features),
    }
    if matched is not None:
        document["numberMatched"] = matched
    return document


def point(lon: float | None, lat: float | None) -> Document | None:
    if lon is None or lat is None:
        return None
    return {"type": "Point", "coordinates": [lon, lat]}


def reading_feature(row: Mapping[str, Any]) -> Document:
    """An archived reading: its time (``datetime``), station, quality and each quantity's value (null stays null)."""
    properties: Document = {
        "datetime": jst_iso(row["observed_ms"]),
        "station_id": row["station_id"],
        "region": row["region"],
        "municipality_code": row["municipality_code"],
        "quality": row["quality"],
    }
    for m in row["measurements"]:
        properties[m["quantity"]] = m["value"]
        properties[f"{m['quantity']}_unit"] = m["unit"]
    return {
        "type": "Feature",
        "id": f"{row['station_id']}.{row['observed_ms']}",
        "geometry": point(row["lon"], row["lat"]),
        "properties": properties,
    }


def alert_feature(line: Mapping[str, Any], lon: float | None, lat: float | None) -> Document:
    """An alert event (the replay's line, with ``datetime``) at its station."""
    properties = {"datetime": line["observed_at"], **{k: v for k, v in line.items() if k != "topics"}}
    return {
        "type": "Feature",
        "id": f"{line['alert_id']}.{line['sequence']}",
        "geometry": point(lon, lat),
        "properties": properties,
    }


def feature_id(text: str) -> tuple[str, int] | None:
    """``<id>.<number>`` (an alert's id and sequence, a reading's station and event time) split, or None."""
    head, _, tail = text.rpartition(".")
    if not head or not tail.isdigit():
        return None
    return head, int(tail)
