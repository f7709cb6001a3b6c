"""A region pack as a value: a prefecture's municipalities, stations, hazard zones and rules, with the
look-ups the hub needs (loaded and validated by :mod:`streams.packs.region_pack`).

Questions about "where" and "whom" are answered here, so no caller reaches into the geofence index:
which municipality a position is in, which municipalities a station's alerts concern, which alert
topics a municipality reads (its own, or every ward's for a designated city, 政令指定都市).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from shapely.geometry.base import BaseGeometry

from streams.kernel.geo import METHOD_NAMES, RegionIndex, ZoneShape
from streams.kernel.model import Location, Municipality, Station, ZoneRef
from streams.kernel.rules import RuleSet
from streams.kernel.topics import RegionTopics

# Where a position is: (municipality code, designated city code, geofence method, distance in m, zones).
Placement = tuple[str | None, str | None, str, float | None, tuple[ZoneRef, ...]]


class Folder(Protocol):
    """A folder's path (``os.PathLike[str]``, e.g. a pathlib.Path), named here without importing os."""

    def __fspath__(self) -> str: ...


@dataclass(frozen=True)
class AreaRow:
    """One row of a pack's JMA area table: a JMA code and the pack municipalities it covers."""

    code: str
    name: str
    municipality_codes: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class HierarchyRow:
    """One 市町村等 of JMA's forecast-area hierarchy: the areas above it (jma_forecast_hierarchy.csv)."""

    code: str  # 7-digit 市町村等 code (二次細分区域)
    name: str
    group_code: str  # 市町村等をまとめた地域 (6 digits)
    group_name: str
    first_code: str  # 一次細分区域
    first_name: str
    pref_code: str  # 府県予報区 (Hokkaido: a 地方 such as 016010 石狩地方)
    pref_name: str
    source: str

    @property
    def parents(self) -> tuple[str, ...]:
        """The 6-digit areas it belongs to (distinct: in Hokkaido the 一次細分区域 is its 府県予報区)."""
        return tuple(dict.fromkeys(c for c in (self.group_code, self.first_code, self.pref_code) if c))


INTENSITY_CLASSES = ("1", "2", "3", "4", "5-", "5+", "6-", "6+", "7")  # JMA's 震度階級 as its XML writes them


@dataclass(frozen=True)
class OfficialSettings:
    """How a pack relays JMA's reports (region.yaml ``official:``): the lowest earthquake intensity pushed to
    its municipalities (``earthquake_min_intensity``, JMA's notation, default every class) and how long an
    earthquake alert stays before it ends by itself (``earthquake_alert_hours``, default 24)."""

    quake_min_intensity: str = "1"
    quake_lasts_ms: int = 24 * 3_600_000


@dataclass(frozen=True)
class RegionPack:
    path: Folder  # the pack's folder (a pathlib.Path; only shown, never opened here)
    name: str
    prefecture_code: str
    prefecture_name: str
    municipalities: tuple[Municipality, ...]
    designated_cities: dict[str, str]  # city code -> city name
    stations: dict[str, Station]
    zones: tuple[ZoneShape, ...]
    rules: RuleSet
    index: RegionIndex
    jma_area_rows: tuple[AreaRow, ...] = ()  # jma_areas.csv: split cities, renumbered municipalities
    jma_forecast_area_rows: tuple[AreaRow, ...] = ()  # jma_forecast_areas.csv: part-prefecture forecast areas
    jma_hierarchy_rows: tuple[HierarchyRow, ...] = ()  # jma_forecast_hierarchy.csv: JMA's area hierarchy
    jma_earthquake_area_rows: tuple[AreaRow, ...] = ()  # jma_earthquake_areas.csv: 地震情報／細分区域
    jma_tsunami_area_rows: tuple[AreaRow, ...] = ()  # jma_tsunami_areas.csv: 津波予報区 -> coastal municipalities
    relay_settings: OfficialSettings = OfficialSettings()  # region.yaml official: how JMA's reports are relayed

    @cached_property
    def stations_by_jma_code(self) -> dict[str, Station]:
        """River gauges by their JMA 水位観測所 code (the jma_station_code column)."""
        return {s.jma_station_code: s for s in self.stations.values() if s.jma_station_code}

    # -- municipalities --------------------------------------------------------------------------
    def municipality(self, code: str) -> Municipality:
        return self.index.municipality(code)

    def affected_codes(self, code: str) -> tuple[str, ...]:
        """A municipality's code, and its designated city's code when it is a ward."""
        m = self.municipality(code)
        return (m.code, m.city_code) if m.city_code else (m.code,)

    def name_of(self, code: str) -> str:
        if code in self.designated_cities:
            return self.designated_cities[code]
        return self.municipality(code).name

    def wards_of(self, city_code: str) -> tuple[str, ...]:
        return tuple(m.code for m in self.municipalities if m.city_code == city_code)

    def codes_read_by(self, code: str) -> tuple[str, ...]:
        """The municipalities whose alert topics this one reads: a designated city reads all its wards'."""
        return self.wards_of(code) if code in self.designated_cities else (code,)

    def find_municipality(self, code_or_name: str) -> str | None:
        """A code from a code or a name (ward names may be given as 横浜市中区 or 中区 when unique)."""
        if code_or_name in self.designated_cities or any(m.code == code_or_name for m in self.municipalities):
            return code_or_name
        hits = [m.code for m in self.municipalities if code_or_name in (m.name, f"{m.city_name or ''}{m.name}")]
        hits += [c for c, n in self.designated_cities.items() if n == code_or_name]
        return hits[0] if len(hits) == 1 else None

    def topics_input(self) -> RegionTopics:
        return RegionTopics(self.name, self.prefecture_code, tuple(m.code for m in self.municipalities))

    # -- where ---------------------------------------------------------------------------------------
    def locate(self, lat: float, lon: float, *, nearest_max_distance_m: float | None = None) -> Location:
        return self.index.locate(lat, lon, nearest_max_distance_m=nearest_max_distance_m)

    def place_many(self, positions: Sequence[tuple[float, float]]) -> list[Placement]:
        """Municipality, method, distance and zones of many (lat, lon) positions, in one vectorised call."""
        batch = self.index.locate_many([p[0] for p in positions], [p[1] for p in positions])
        municipalities = self.index.municipalities
        out: list[Placement] = []
        for k in range(len(positions)):
            i = int(batch.municipality_index[k])
            m = municipalities[i] if i >= 0 else None
            distance = float(batch.distance_m[k])
            out.append(
                (
                    m.code if m else None,
                    m.city_code if m else None,
                    METHOD_NAMES[int(batch.method[k])] or "none",
                    None if distance != distance else distance,
                    batch.zones[k],
                )
            )
        return out

    def concerned_codes(self, station: Station) -> tuple[str, ...]:
        """Municipalities an alert of this station concerns: its own (and its city), downstream ones
        (river gauges), and every municipality intersecting its linked hazard zones."""
        base = [station.home_code, *station.downstream_municipalities]
        if station.hazard_zone_ids:
            base += self.index.municipalities_intersecting(self.index.zone_area(station.hazard_zone_ids))
        codes: set[str] = set()
        for code in base:
            codes.update(self.affected_codes(code))
        return tuple(sorted(codes))

    def boundaries(self) -> list[tuple[Municipality, BaseGeometry]]:
        """Every municipality with its boundary (a lon/lat shapely geometry), as loaded."""
        return list(zip(self.index.municipalities, self.index.boundaries, strict=True))

    def zone_rings(self, zone_ids: Sequence[str], max_points: int = 200) -> list[list[tuple[float, float]]]:
        """Each zone's outer ring(s) as lon/lat, simplified to at most about max_points (for CAP polygons)."""
        import shapely

        rings = []
        for zone_id in zone_ids:
            geometry = self.index.zone_area([zone_id])
            tolerance = 0.00001
            for part in getattr(geometry, "geoms", [geometry]):
                if part.is_empty or part.geom_type != "Polygon":
                    continue
                simplified = part
                while len(simplified.exterior.coords) > max_points:
                    tolerance *= 2
                    simplified = shapely.simplify(part, tolerance)
                rings.append(list(simplified.exterior.coords))
        return rings
