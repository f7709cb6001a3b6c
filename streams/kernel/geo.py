"""Geofencing: which municipality and which hazard zones a point is in, single or in batches.

Pure: shapely 2 and numpy only. Built once per region pack.

Geometry is held in a local metric projection (equirectangular about the region's centre), so
distances and radii are metres and nearest-neighbour queries run in the STRtree directly. Within a
prefecture (about ±1° of latitude) the scale error is below 2 %, far less than the error of the
simplified boundaries it is used to correct.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import GeometryCollection, MultiPolygon
from shapely.geometry.base import BaseGeometry

from streams.kernel.model import Location, Municipality, ZoneRef

# Method codes in batch results.
NONE, CONTAINS, NEAREST = 0, 1, 2
METHOD_NAMES = {NONE: None, CONTAINS: "contains", NEAREST: "nearest"}


@dataclass(frozen=True)
class LocalProjection:
    """lon/lat degrees <-> metres east/north of (lon0, lat0)."""

    lon0: float
    lat0: float

    @property
    def m_per_deg_lat(self) -> float:
        phi = math.radians(self.lat0)
        return 111_132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)

    @property
    def m_per_deg_lon(self) -> float:
        phi = math.radians(self.lat0)
        return 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)

    def xy(self, lons: ArrayLike, lats: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x = np.asarray(lons, dtype=float)
        y = np.asarray(lats, dtype=float)
        return (x - self.lon0) * self.m_per_deg_lon, (y - self.lat0) * self.m_per_deg_lat

    def geometry(self, geom: BaseGeometry) -> BaseGeometry:
        kx, ky = self.m_per_deg_lon, self.m_per_deg_lat
        offset = np.array([self.lon0, self.lat0])
        scale = np.array([kx, ky])
        return shapely.transform(geom, lambda coords: (coords - offset) * scale)


def _points(xs: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.object_]:
    """The points of coordinate arrays (an array of Point geometries, one per x, y)."""
    # the stubs answer `Point | array` for array-likes: arrays in give an array out
    return cast("NDArray[np.object_]", shapely.points(xs, ys))


@dataclass(frozen=True)
class ZoneShape:
    """A hazard zone with its geometry (lon/lat degrees)."""

    ref: ZoneRef
    name: str
    geometry: BaseGeometry
    attributes: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # the GeoJSON properties


@dataclass(frozen=True)
class BatchLocation:
    """Answers for many points: parallel arrays plus the zones of each point."""

    municipality_index: np.ndarray  # int32, -1 where none
    method: np.ndarray  # int8: NONE, CONTAINS, NEAREST
    distance_m: np.ndarray  # float64: 0 for contains, distance for nearest, nan for none
    zones: list[tuple[ZoneRef, ...]]


def _parts(geom: BaseGeometry) -> list[BaseGeometry]:
    """Polygons of a (Multi)Polygon or collection: the STRtree indexes parts, not multi-shapes."""
    if isinstance(geom, MultiPolygon | GeometryCollection):
        return [p for g in geom.geoms for p in _parts(g)]
    return [geom]


class RegionIndex:
    """STRtrees over municipality and hazard-zone polygons, with single and vectorised look-ups."""

    def __init__(
        self,
        municipalities: Sequence[Municipality],
        boundaries: Sequence[BaseGeometry],
        zones: Sequence[ZoneShape] = (),
        *,
        nearest_max_distance_m: float = 0.0,
    ):
        if len(municipalities) != len(boundaries):
            raise ValueError("one boundary per municipality")
        self.municipalities = tuple(municipalities)
        self.boundaries = tuple(boundaries)  # lon/lat degrees, as loaded (for maps)
        self.nearest_max_distance_m = float(nearest_max_distance_m)
        self.zones = tuple(zones)
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(list(boundaries)))
        self.bounds = (minx, miny, maxx, maxy)  # lon/lat degrees
        self.projection = LocalProjection((minx + maxx) / 2, (miny + maxy) / 2)
        project = self.projection.geometry

        parts, owner = [], []
        for i, geom in enumerate(boundaries):
            for part in _parts(geom):
                parts.append(project(part))
                owner.append(i)
        self._muni_parts = np.array(parts, dtype=object)
        self._muni_owner = np.array(owner, dtype=np.int32)
        self._muni_tree = shapely.STRtree(self._muni_parts)
        self._muni_shapes = [project(g) for g in boundaries]

        zparts, zowner = [], []
        for i, zone in enumerate(self.zones):
            for part in _parts(zone.geometry):
                zparts.append(project(part))
                zowner.append(i)
        self._zone_owner = np.array(zowner, dtype=np.int32)
        self._zone_tree = shapely.STRtree(np.array(zparts, dtype=object)) if zparts else None
        self._code_index = {m.code: i for i, m in enumerate(self.municipalities)}

    # -- batch (hot path) -----------------------------------------------------------------
    def locate_many(
        self, lats: ArrayLike, lons: ArrayLike, *, with_zones: bool = True, nearest_max_distance_m: float | None = None
    ) -> BatchLocation:
        """Municipality (exact containment, else nearest within reach) and zones of every point."""
        xs, ys = self.projection.xy(lons, lats)
        n = len(xs)
        points = _points(xs, ys)
        index = np.full(n, -1, dtype=np.int32)
        method = np.zeros(n, dtype=np.int8)
        distance = np.full(n, np.nan)
        if n:
            inp, part = self._muni_tree.query(points, predicate="intersects")
            if len(inp):
                owners = self._muni_owner[part]
                order = np.lexsort((owners, inp))  # deterministic: lowest municipality index wins ties
                inp_s, own_s = inp[order], owners[order]
                first = np.r_[True, inp_s[1:] != inp_s[:-1]]
                index[inp_s[first]] = own_s[first]
                method[inp_s[first]] = CONTAINS
                distance[inp_s[first]] = 0.0
            reach = self.nearest_max_distance_m if nearest_max_distance_m is None else nearest_max_distance_m
            missing = np.flatnonzero(index < 0)
            if len(missing) and reach > 0:
                (near_inp, near_part), near_dist = self._muni_tree.query_nearest(
                    points[missing], max_distance=reach, return_distance=True, all_matches=False
                )
                targets = missing[near_inp]
                index[targets] = self._muni_owner[near_part]
                method[targets] = NEAREST
                distance[targets] = near_dist
        zones: list[tuple[ZoneRef, ...]] = self._zones_of(points) if with_zones else [()] * n
        return BatchLocation(index, method, distance, zones)

    def _zones_of(self, points: NDArray[np.object_]) -> list[tuple[ZoneRef, ...]]:
        n = len(points)
        if self._zone_tree is None or n == 0:
            return [()] * n
        inp, part = self._zone_tree.query(points, predicate="intersects")
        if not len(inp):
            return [()] * n
        found: dict[int, set[int]] = {}
        for i, zone_index in zip(inp.tolist(), self._zone_owner[part].tolist(), strict=False):
            found.setdefault(i, set()).add(zone_index)
        out: list[tuple[ZoneRef, ...]] = [()] * n
        for i, zone_indexes in found.items():
            out[i] = tuple(sorted((self.zones[z].ref for z in zone_indexes), key=lambda r: r.zone_id))
        return out

    # -- single look-ups ----------------------------------------------------------------
    def locate(self, lat: float, lon: float, *, nearest_max_distance_m: float | None = None) -> Location:
        batch = self.locate_many([lat], [lon], nearest_max_distance_m=nearest_max_distance_m)
        i = int(batch.municipality_index[0])
        method = METHOD_NAMES[int(batch.method[0])]
        if i < 0:
            return Location(None, None, None, None, float("nan"), batch.zones[0])
        m = self.municipalities[i]
        return Location(m.code, m.name, m.city_code, method, float(batch.distance_m[0]), batch.zones[0])

    def zones_at(self, lat: float, lon: float) -> tuple[ZoneRef, ...]:
        xs, ys = self.projection.xy([lon], [lat])
        return self._zones_of(_points(xs, ys))[0]

    def municipalities_intersecting(self, area_lonlat: BaseGeometry) -> list[str]:
        """Codes of every municipality an area (lon/lat polygon, line or point) touches, sorted."""
        shape = self.projection.geometry(area_lonlat)
        parts = self._muni_tree.query(shape, predicate="intersects")
        return sorted({self.municipalities[i].code for i in self._muni_owner[parts].tolist()})

    def municipalities_within(self, lat: float, lon: float, radius_m: float) -> list[str]:
        """Codes of every municipality within radius_m metres of a point, sorted."""
        xs, ys = self.projection.xy([lon], [lat])
        point = _points(xs, ys)[0]
        parts = self._muni_tree.query(point, predicate="dwithin", distance=radius_m)
        return sorted({self.municipalities[i].code for i in self._muni_owner[parts].tolist()})

    def nearest_municipality(self, lat: float, lon: float) -> tuple[str, float]:
        """The nearest municipality at any distance, and the distance in metres (for error messages)."""
        xs, ys = self.projection.xy([lon], [lat])
        (_, part), dist = self._muni_tree.query_nearest(_points(xs, ys), return_distance=True, all_matches=False)
        return self.municipalities[int(self._muni_owner[part[0]])].code, float(dist[0])

    def municipality(self, code: str) -> Municipality:
        return self.municipalities[self._code_index[code]]

    def zone_area(self, zone_ids: Sequence[str]) -> BaseGeometry:
        """Union of the named zones (lon/lat), for alerts that carry linked hazard zones."""
        wanted = set(zone_ids)
        return shapely.union_all([z.geometry for z in self.zones if z.ref.zone_id in wanted])
