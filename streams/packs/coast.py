"""A pack's coast and its 津波予報区, derived from boundaries alone (pure: geometries in, rows out).

Which municipalities a 津波予報区 (tsunami forecast area) covers is not in JMA's reports. It is derived:

1. **The coast.** The prefecture's outline (its exterior rings: a lake inside is no coast) minus its borders
   with the other prefectures (their outlines, within ``border_m``): what is left meets the sea. A pack built
   from one prefecture's N03 still tells its coast from its land borders, because the outlines of every
   prefecture come with the hub (``data/boundaries/prefectures.geojson.gz``).
2. **Whose coast.** The coast is cut into short pieces (``step_m``); each piece belongs to the nearest
   municipality (or ward) of the pack. A municipality with at least ``min_m`` of coast is coastal.
3. **Which 津波予報区.** Each piece goes to the nearest 津波予報区 line of JMA's GIS data (within ``reach_m``):
   a municipality is on every 津波予報区 holding at least ``min_m`` (or half) of its coast, so 横須賀市 is on
   both 東京湾内湾 and 相模湾・三浦半島. A coastal municipality with no piece in reach (an inner bay JMA's
   simplified line does not follow) takes the nearest 津波予報区 within ``fallback_m``, and says so; beyond
   that it stays unassigned (listed for the operator).

Distances are metres in a local equirectangular projection (longitude scaled by cos(latitude)): good to a
few per cent over one prefecture, far below the simplification of the boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from streams.kernel.region import AreaRow

METRES_PER_DEGREE = 111_195.0


@dataclass(frozen=True)
class CoastParameters:
    border_m: float = 300.0  # an outline this close to another prefecture is a land border
    step_m: float = 200.0  # length of the coast pieces
    reach_m: float = 2_000.0  # a piece belongs to the nearest 津波予報区 line within this
    fallback_m: float = 10_000.0  # a coastal municipality with no piece in reach: nearest line within this
    min_m: float = 500.0  # coast (or share of it) that counts


@dataclass(frozen=True)
class TsunamiLine:
    code: str  # 津波予報区 code
    name: str
    geometry: BaseGeometry  # JMA's coast line of the area (WGS84 lon/lat)


@dataclass(frozen=True)
class Coast:
    """The coastal municipalities and their 津波予報区."""

    coast_m: dict[str, int]  # municipality code -> metres of coast (coastal ones only), rounded
    rows: tuple[AreaRow, ...]  # 津波予報区 -> municipalities, one row per area
    fallback: tuple[str, ...]  # municipalities placed by the fallback (nearest within fallback_m)
    unassigned: tuple[str, ...]  # coastal municipalities on no 津波予報区


class _Projection:
    """WGS84 lon/lat to local metres (equirectangular around a latitude)."""

    def __init__(self, latitude: float):
        self.scale = np.array([math.cos(math.radians(latitude)) * METRES_PER_DEGREE, METRES_PER_DEGREE])

    def __call__(self, geometry: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geometry, lambda xy: xy * self.scale)


def _exterior(geometry: BaseGeometry) -> BaseGeometry:
    polygons = getattr(geometry, "geoms", [geometry])
    return shapely.MultiLineString([p.exterior for p in polygons if p.geom_type == "Polygon"])


def _pieces(coast: BaseGeometry, step_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Midpoints (n×2) and lengths (n) of the coast cut into pieces of at most ``step_m``."""
    lines = [g for g in getattr(coast, "geoms", [coast]) if g.geom_type == "LineString" and not g.is_empty]
    if not lines:
        return np.zeros((0, 2)), np.zeros(0)
    cut = [np.asarray(shapely.segmentize(line, step_m).coords) for line in lines]
    mids = np.concatenate([(a[:-1] + a[1:]) / 2 for a in cut])
    lengths = np.concatenate([np.hypot(*np.diff(a, axis=0).T) for a in cut])
    return mids, lengths


def coast_line(outline: BaseGeometry, neighbours: Sequence[BaseGeometry], border_m: float) -> BaseGeometry:
    """The prefecture's coast (projected): its outline's exterior minus its borders with ``neighbours``."""
    exterior = _exterior(outline)
    borders = [n.boundary for n in neighbours if not n.is_empty]
    if not borders:
        return exterior
    return exterior.difference(shapely.union_all(borders).buffer(border_m))


def coastal_municipalities(
    units: Sequence[tuple[str, BaseGeometry]],
    outline: BaseGeometry,
    neighbours: Sequence[BaseGeometry],
    lines: Sequence[TsunamiLine],
    parameters: CoastParameters = CoastParameters(),
    source: str = "derived",
) -> Coast:
    """The pack's coastal municipalities (``units``: N03 municipalities and wards) and the 津波予報区 of each."""
    p = parameters
    project = _Projection(outline.centroid.y)
    area = project(outline)
    coast = coast_line(area, [project(n) for n in neighbours], p.border_m)
    mids, lengths = _pieces(coast, p.step_m)
    points = np.asarray(shapely.points(mids)) if len(mids) else np.array([], dtype=object)
    shapes = [project(g) for _, g in units]
    owner = _nearest(shapes, points, 3 * p.border_m)
    near = [line for line in lines if project(line.geometry).distance(area) <= p.fallback_m]
    line_shapes = [project(line.geometry) for line in near]
    area_of = _nearest(line_shapes, points, p.reach_m)
    coast_m: dict[int, float] = {}
    share: dict[tuple[int, int], float] = {}
    for piece, unit in owner.items():
        coast_m[unit] = coast_m.get(unit, 0.0) + float(lengths[piece])
        if piece in area_of:
            key = (unit, area_of[piece])
            share[key] = share.get(key, 0.0) + float(lengths[piece])
    members: dict[int, set[str]] = {}
    fallback: list[str] = []
    unassigned: list[str] = []
    for unit, metres in sorted(coast_m.items()):
        if metres < p.min_m:
            continue
        mine = [a for (u, a), s in share.items() if u == unit and s >= min(p.min_m, metres / 2)]
        if not mine:
            mine = _fallback(shapes[unit], coast, line_shapes, p)
            (fallback if mine else unassigned).append(units[unit][0])
        for a in mine:
            members.setdefault(a, set()).add(units[unit][0])
    rows = tuple(
        AreaRow(near[a].code, near[a].name, tuple(sorted(codes)), source)
        for a, codes in sorted(members.items(), key=lambda item: near[item[0]].code)
    )
    coastal = {units[u][0]: round(m) for u, m in coast_m.items() if m >= p.min_m}
    return Coast(coastal, rows, tuple(fallback), tuple(unassigned))


def _nearest(shapes: Sequence[BaseGeometry], points: np.ndarray, within: float) -> dict[int, int]:
    """piece index -> index of the nearest shape within ``within`` metres."""
    if not len(shapes) or not len(points):
        return {}
    found = shapely.STRtree(shapes).query_nearest(points, max_distance=within, all_matches=False)
    return {int(piece): int(shape) for piece, shape in zip(found[0], found[1], strict=True)}


def _fallback(unit: BaseGeometry, coast: BaseGeometry, lines: Sequence[BaseGeometry], p: CoastParameters) -> list[int]:
    """The nearest 津波予報区 line to the unit's coast, within ``fallback_m``."""
    own_coast = coast.intersection(unit.buffer(3 * p.border_m))
    if own_coast.is_empty or not lines:
        return []
    distances = [line.distance(own_coast) for line in lines]
    best = int(np.argmin(distances))
    return [best] if distances[best] <= p.fallback_m else []
