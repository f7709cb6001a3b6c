"""JMA's area codes as a region pack's municipalities (pure; the tables are read by ``streams.packs.jma_area_files``).

JMA names places with its own codes, not the pack's JIS X 0402 codes:

* 7-digit 市町村等 codes (気象・地震・火山情報／市町村等; 土砂災害警戒情報 areas, the cities of a flood
  forecast's 浸水想定地区): usually the 5-digit JIS code + ``00`` (1420600 小田原市); a designated city
  (政令指定都市) may appear whole (4010000 北九州市 = the city and every ward); a city JMA splits for its
  warnings (1410011 横浜市北部) is a set of wards, and a renumbered municipality (4030500 那珂川町, now
  40231 那珂川市) is another code: both come from the pack's ``jma_areas.csv``, each row with its source.
* 6-digit 府県予報区・細分区域 codes (気象情報／府県予報区・細分区域等; 記録的短時間大雨情報 areas, the larger
  areas of 気象警報・注意報, the 一次細分区域 of 竜巻注意情報): a row of the pack's ``jma_forecast_areas.csv``
  (operator's overrides); else the 市町村等 the pack's ``jma_forecast_hierarchy.csv`` places under it
  (府県予報区 → 一次細分区域 → 市町村等をまとめた地域 → 市町村等, JMA's area hierarchy); else ``PP0000`` is the
  whole prefecture.
* 3-digit 地震情報／細分区域 codes (震度速報, 震源・震度に関する情報): the pack's ``jma_earthquake_areas.csv``;
  a code the table does not list is another prefecture's, unless the report places it in the pack's
  prefecture (Pref/Code), then it is unknown.
* 3-digit 津波予報区 codes (津波警報・注意報・予報, 津波情報): the pack's ``jma_tsunami_areas.csv`` (its coastal
  municipalities); a 津波予報区 the table does not list is not this pack's coast.

An area of another prefecture is not this pack's business (cross-border reports are normal): it is
skipped and counted. An area of the pack's own prefecture that maps to no municipality is an error
the hub must not swallow: the report is dead-lettered (``unknown_area``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streams.kernel.region import AreaRow, HierarchyRow, RegionPack

OWN, OTHER, UNKNOWN = "own", "other", "unknown"


@dataclass(frozen=True)
class Resolved:
    """What a JMA area code is for a pack: own (with its municipality codes), other prefecture, or unknown."""

    kind: str  # OWN | OTHER | UNKNOWN
    municipality_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class JmaAreas:
    """The look-ups from JMA's area codes to one pack's municipality codes (wards and their city)."""

    prefecture_code: str
    municipality_codes: frozenset[str]
    city_of_ward: Mapping[str, str]  # ward code -> designated city code
    wards_of_city: Mapping[str, tuple[str, ...]]  # designated city code -> ward codes
    table: Mapping[str, AreaRow] = field(default_factory=dict)  # 7-digit codes (jma_areas.csv)
    forecast_table: Mapping[str, AreaRow] = field(default_factory=dict)  # 6-digit codes (jma_forecast_areas.csv)
    hierarchy: Mapping[str, HierarchyRow] = field(default_factory=dict)  # 7-digit codes (jma_forecast_hierarchy.csv)
    earthquake_table: Mapping[str, AreaRow] = field(default_factory=dict)  # 地震情報／細分区域 (3 digits)
    tsunami_table: Mapping[str, AreaRow] = field(default_factory=dict)  # 津波予報区 (3 digits)
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # 6-digit area -> its 市町村等 (hierarchy)

    @classmethod
    def build(
        cls,
        prefecture_code: str,
        municipalities: Iterable[tuple[str, str | None]],
        table: Iterable[AreaRow] = (),
        forecast_table: Iterable[AreaRow] = (),
        *,
        hierarchy: Iterable[HierarchyRow] = (),
        earthquake_table: Iterable[AreaRow] = (),
        tsunami_table: Iterable[AreaRow] = (),
    ) -> JmaAreas:
        """From the pack's (code, designated city code or None) pairs and its tables."""
        codes: set[str] = set()
        city_of_ward: dict[str, str] = {}
        wards: dict[str, list[str]] = {}
        for code, city in municipalities:
            codes.add(code)
            if city:
                city_of_ward[code] = city
                wards.setdefault(city, []).append(code)
        hierarchy_rows = {row.code: row for row in hierarchy}
        members: dict[str, list[str]] = {}
        for row in hierarchy_rows.values():
            for parent in row.parents:
                members.setdefault(parent, []).append(row.code)
        return cls(
            prefecture_code=prefecture_code,
            municipality_codes=frozenset(codes),
            city_of_ward=city_of_ward,
            wards_of_city={city: tuple(sorted(ws)) for city, ws in wards.items()},
            table={row.code: row for row in table},
            forecast_table={row.code: row for row in forecast_table},
            hierarchy=hierarchy_rows,
            earthquake_table={row.code: row for row in earthquake_table},
            tsunami_table={row.code: row for row in tsunami_table},
            members={code: tuple(sorted(cs)) for code, cs in members.items()},
        )

    def _with_cities(self, codes: Iterable[str]) -> tuple[str, ...]:
        """The codes, each ward with its designated city (a ward's alert names its city too)."""
        out: set[str] = set()
        for code in codes:
            if code in self.wards_of_city:
                out.add(code)
                out.update(self.wards_of_city[code])
            elif code in self.municipality_codes:
                out.add(code)
                if code in self.city_of_ward:
                    out.add(self.city_of_ward[code])
        return tuple(sorted(out))

    def municipal(self, jma_code: str) -> Resolved:
        """A 7-digit 市町村等 code (or a 5-digit JIS code, as some reports give) as this pack's municipalities."""
        if len(jma_code) not in (5, 7) or not jma_code.isdigit():
            return Resolved(UNKNOWN) if jma_code[:2] == self.prefecture_code else Resolved(OTHER)
        if jma_code[:2] != self.prefecture_code:
            return Resolved(OTHER)
        row = self.table.get(jma_code)
        if row is not None:
            return Resolved(OWN, self._with_cities(row.municipality_codes))
        if len(jma_code) == 7 and not jma_code.endswith("00"):
            return Resolved(UNKNOWN)  # a part of a city that the pack's table does not list
        jis = jma_code[:5]
        if jis in self.wards_of_city or jis in self.municipality_codes:
            return Resolved(OWN, self._with_cities([jis]))
        return Resolved(UNKNOWN)

    def forecast(self, forecast_code: str) -> Resolved:
        """A 6-digit 府県予報区・細分区域 code as this pack's municipalities (PP0000: all of them).

        Its row in jma_forecast_areas.csv, else the municipalities of the 市町村等 the hierarchy places under it
        (unknown when one of them maps to none: the pack's tables disagree, which loading reports), else PP0000.
        """
        if forecast_code[:2] != self.prefecture_code:
            return Resolved(OTHER)
        row = self.forecast_table.get(forecast_code)
        if row is not None:
            return Resolved(OWN, self._with_cities(row.municipality_codes))
        members = self.members.get(forecast_code)
        if members:
            found = [self.municipal(code) for code in members]
            if all(f.kind == OWN for f in found):
                return Resolved(OWN, tuple(sorted({c for f in found for c in f.municipality_codes})))
            return Resolved(UNKNOWN)
        if forecast_code == f"{self.prefecture_code}0000":
            return Resolved(OWN, self._with_cities(self.municipality_codes | set(self.wards_of_city)))
        return Resolved(UNKNOWN)

    def earthquake_area(self, area_code: str, pref_code: str = "") -> Resolved:
        """A 地震情報／細分区域 code (e.g. 360 神奈川県東部) as this pack's municipalities.

        Not in the pack's table: unknown when the report puts it in the pack's prefecture (``pref_code``, the
        report's Pref/Code), another prefecture's otherwise.
        """
        row = self.earthquake_table.get(area_code)
        if row is not None:
            return Resolved(OWN, self._with_cities(row.municipality_codes))
        return Resolved(UNKNOWN) if pref_code == self.prefecture_code else Resolved(OTHER)

    def tsunami_area(self, area_code: str) -> Resolved:
        """A 津波予報区 code (330 相模湾・三浦半島) as this pack's coastal municipalities; OTHER when not its coast."""
        row = self.tsunami_table.get(area_code)
        if row is not None:
            return Resolved(OWN, self._with_cities(row.municipality_codes))
        return Resolved(OTHER)

    def hierarchy_of(self, jma_code: str) -> HierarchyRow | None:
        """The forecast areas above a 7-digit 市町村等 code (None when the pack's hierarchy does not list it)."""
        return self.hierarchy.get(jma_code)


def areas_of(pack: RegionPack) -> JmaAreas:
    """JMA's area codes as this pack's municipalities (built from the pack's municipalities and JMA tables)."""
    return JmaAreas.build(
        pack.prefecture_code,
        [(m.code, m.city_code) for m in pack.municipalities],
        pack.jma_area_rows,
        pack.jma_forecast_area_rows,
        hierarchy=pack.jma_hierarchy_rows,
        earthquake_table=pack.jma_earthquake_area_rows,
        tsunami_table=pack.jma_tsunami_area_rows,
    )
