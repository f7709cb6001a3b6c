"""GeoJSON files of region packs (N03 boundaries, hazard zones): read, and each feature's polygon checked.

Problems are recorded (file, feature, what was expected) instead of raised, so a pack reports all of
them at once.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from streams.kernel.model import in_japan
from streams.platform.checks import Problems

# A GeoJSON feature as read: its geometry and properties are what the file holds (checked where used).
Feature = dict[str, Any]


def read_json(path: Path, problems: Problems) -> Any:
    """The JSON document of a file; a name ending in ``.gz`` is read through gzip (N03 files of the whole
    country are kept compressed in the repo)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                return json.load(handle)
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:  # (gzip.BadGzipFile too)
        problems.add(path, f"cannot read: {exc.strerror or exc}")
    except (EOFError, zlib.error) as exc:
        problems.add(path, f"broken gzip stream: {exc}", expected="a whole .geojson.gz file")
    except ValueError as exc:
        problems.add(path, f"not valid JSON: {exc}")
    return None


def features(path: Path, problems: Problems) -> list[Any]:
    doc = read_json(path, problems)
    if doc is None:
        return []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        problems.add(
            path, "not a GeoJSON FeatureCollection", expected='{"type": "FeatureCollection", "features": [...]}'
        )
        return []
    found: list[Any] = doc["features"]  # each checked where it is used
    return found


def polygon(feature: Any, path: Path, where: str, problems: Problems) -> BaseGeometry | None:
    """A feature's valid (Multi)Polygon in Japan, or None after recording why not."""
    if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
        problems.add(path, "feature has no geometry", where=where, expected="a Polygon or MultiPolygon")
        return None
    try:
        geom = shape(feature["geometry"])
    except Exception as exc:  # shapely raises several types for malformed coordinates
        problems.add(path, f"bad geometry: {exc}", where=where, expected="valid GeoJSON coordinates")
        return None
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        problems.add(path, f"geometry is a {geom.geom_type}", where=where, expected="a Polygon or MultiPolygon")
        return None
    if geom.is_empty:
        problems.add(path, "geometry is empty", where=where, expected="a non-empty polygon")
        return None
    if not geom.is_valid:
        problems.add(
            path,
            f"bad geometry: {shapely.is_valid_reason(geom)}",
            where=where,
            expected="a valid polygon (no self-intersections); fix it, e.g. with shapely.make_valid",
        )
        return None
    minx, miny, maxx, maxy = geom.bounds
    if not (in_japan(miny, minx) and in_japan(maxy, maxx)):
        problems.add(
            path,
            f"geometry bounds {geom.bounds} are outside Japan",
            where=where,
            expected="WGS84 lon/lat degrees (GeoJSON order: longitude first)",
        )
        return None
    return geom


def number_or_none(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN is no number
