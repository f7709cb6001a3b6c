"""The JMA area tables of a pack, derived from reference data and the pack's N03 boundaries (pure).

``region init`` (:mod:`streams.packs.jma_pack_tables`) reads the reference data in the repo and writes what
these functions return; every row says where it comes from (its ``source``):

* :func:`hierarchy_rows` — the prefecture's rows of JMA's forecast-area hierarchy (府県予報区 → 一次細分区域 →
  市町村等をまとめた地域 → 市町村等), as they are.
* :func:`municipal_exceptions` — the 7-digit 市町村等 codes of the prefecture (the hierarchy's and the earthquake
  list's) that the general rule (JIS code + ``00``, a designated city whole) does not resolve, each mapped by
  the first method that works: (1) JMA's own polygon of the code (parts of designated cities such as 0410001
  仙台市東部, wards newer than the N03 such as 2213800 浜松中央区) overlapping the pack's wards; (2) a part of a
  municipality (0421301 栗原市東部 → 04213); (3) the municipality holding JMA's centroid of the code.
* :func:`earthquake_area_rows` — each 地震情報／細分区域 and its municipalities: every municipality (or ward) of
  the pack goes to the area of JMA's GIS data it overlaps most (JMA's areas are unions of 市町村等, so one
  area per municipality).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from streams.kernel.region import AreaRow, HierarchyRow
from streams.packs.jma_areas import OWN, JmaAreas

PART_SHARE = 0.10  # a ward is in a part of its city when that much of the ward lies in JMA's polygon of the part
AREA_SHARE = 0.5  # an area no unit overlaps most goes to the units holding this much of it
NEAREST_DEGREES = 0.2  # an island outside every simplified area polygon goes to the nearest area this close


@dataclass(frozen=True)
class Derived:
    """Rows derived for a pack, and what could not be (each with the reason)."""

    rows: tuple[AreaRow, ...]
    unresolved: tuple[str, ...]


def hierarchy_rows(reference: Iterable[Mapping[str, str]], prefecture_code: str, source: str) -> list[HierarchyRow]:
    """The prefecture's rows of JMA's forecast-area hierarchy (columns of ``jma/forecast_area_hierarchy.csv``)."""
    return [
        HierarchyRow(
            code=row["citycode"],
            name=row["cityname"],
            group_code=row["matomeareacode"],
            group_name=row["matomeareaname"],
            first_code=row["firstareacode"],
            first_name=row["firstareaname"],
            pref_code=row["prefcode"],
            pref_name=row["prefname"],
            source=source,
        )
        for row in reference
        if row.get("citycode", "").startswith(prefecture_code)
    ]


def _overlapping(shape: BaseGeometry, units: Sequence[tuple[str, BaseGeometry]]) -> tuple[str, ...]:
    """The units at least PART_SHARE inside ``shape``."""
    return tuple(
        sorted(
            code
            for code, geometry in units
            if geometry.intersects(shape) and geometry.intersection(shape).area >= PART_SHARE * geometry.area
        )
    )


def _holding(point: tuple[float, float], units: Sequence[tuple[str, BaseGeometry]]) -> tuple[str, ...]:
    """The unit that holds (lat, lon), else the nearest within NEAREST_DEGREES."""
    spot = Point(point[1], point[0])
    inside = [code for code, geometry in units if geometry.covers(spot)]
    if inside:
        return (inside[0],)
    distance, code = min(((g.distance(spot), c) for c, g in units), default=(1.0, ""))
    return (code,) if distance <= NEAREST_DEGREES else ()


def municipal_exceptions(
    codes: Iterable[tuple[str, str]],
    areas: JmaAreas,
    units: Sequence[tuple[str, BaseGeometry]],
    parts: Mapping[str, tuple[BaseGeometry, str]],
    centroids: Mapping[str, tuple[float, float]],
    centroid_source: str,
) -> Derived:
    """Rows of ``jma_areas.csv`` for the (code, name) pairs ``areas`` does not resolve (see the module docstring).

    ``parts``: JMA's polygon of a code and where it comes from; ``centroids``: (lat, lon) of earthquake codes.
    """
    rows: dict[str, AreaRow] = {}
    unresolved: list[str] = []
    for code, name in codes:
        if code in rows or areas.municipal(code).kind == OWN:
            continue
        found: tuple[str, ...] = ()
        source = ""
        if code in parts:
            shape, origin = parts[code]
            found, source = (
                _overlapping(shape, units),
                f"{origin}: wards at least {PART_SHARE:.0%} inside JMA's polygon",
            )
        if not found and areas.municipal(code[:5]).kind == OWN:
            found, source = (code[:5],), f"a part of {code[:5]} (JMA code {code} = JIS {code[:5]} + part number)"
        if not found and code in centroids:
            found, source = _holding(centroids[code], units), f"{centroid_source}: the municipality holding it"
        if found:
            rows[code] = AreaRow(code, name, found, source)
        else:
            unresolved.append(f"{code} {name}: no municipality of the pack (JIS {code[:5]}), no polygon, no centroid")
    return Derived(tuple(rows[c] for c in sorted(rows)), tuple(unresolved))


def earthquake_area_rows(
    units: Sequence[tuple[str, BaseGeometry]], areas: Sequence[tuple[str, str, BaseGeometry]], source: str
) -> Derived:
    """Each 地震情報／細分区域 (code, name, polygon) with the units that overlap it most."""
    if not areas:
        return Derived((), tuple(f"{code}: no 地震情報／細分区域 data" for code, _ in units))
    tree = shapely.STRtree([geometry for _, _, geometry in areas])
    members: dict[int, list[str]] = {}
    by_nearest: dict[int, list[str]] = {}
    unplaced = []
    for code, geometry in units:
        overlaps = [
            (geometry.intersection(areas[i][2]).area, int(i)) for i in tree.query(geometry, predicate="intersects")
        ]
        area, best = max(overlaps, default=(0.0, -1))
        if area <= 0:
            nearest = tree.query_nearest(geometry, max_distance=NEAREST_DEGREES, all_matches=False)
            if not len(nearest):
                unplaced.append(f"{code}: in no 地震情報／細分区域 polygon (nor within {NEAREST_DEGREES}°)")
                continue
            best = int(nearest[0])
            by_nearest.setdefault(best, ["nearest (outside every polygon)"]).append(code)
        members.setdefault(best, []).append(code)
    _cover_empty_areas(units, areas, members, by_nearest)
    rows = tuple(
        AreaRow(
            areas[i][0],
            areas[i][1],
            tuple(sorted(codes)),
            source + (f"; {by_nearest[i][0]}: {' '.join(by_nearest[i][1:])}" if i in by_nearest else ""),
        )
        for i, codes in sorted(members.items(), key=lambda item: areas[item[0]][0])
    )
    return Derived(rows, tuple(unplaced))


def _cover_empty_areas(
    units: Sequence[tuple[str, BaseGeometry]],
    areas: Sequence[tuple[str, str, BaseGeometry]],
    members: dict[int, list[str]],
    notes: dict[int, list[str]],
) -> None:
    """An area no unit overlaps most (an island of a larger municipality: 775 鹿児島県甑島 in 薩摩川内市) gets the
    units holding at least half of it, so a report naming the area reaches them."""
    for i, (_, _, shape) in enumerate(areas):
        if i in members or shape.area <= 0:
            continue
        holding = [
            code
            for code, geometry in units
            if geometry.intersects(shape) and geometry.intersection(shape).area >= AREA_SHARE * shape.area
        ]
        if holding:
            members[i] = holding
            notes[i] = [f"holding at least {AREA_SHARE:.0%} of it", *holding]
