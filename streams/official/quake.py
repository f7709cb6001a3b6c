"""地震 (JMA's earthquake information) as values: 震度速報 VXSE51, 震源に関する情報 VXSE52, 震源・震度に関する情報
VXSE53.

Pure; reads a report already parsed safely and validated against JMA's schema (see :mod:`streams.official.head`).

* VXSE53 (InfoKind 地震情報): the hypocentre (Body/Earthquake) and the intensities per prefecture, per
  地震情報／細分区域 and per 市町村等 (Body/Intensity/Observation/Pref/Area/City: 7-digit codes, a designated
  city's wards by ward, names as JMA writes them: 栃木さくら市 0921400). A 遠地地震 (a distant earthquake,
  Head/Title 遠地地震に関する情報) has a hypocentre and no intensities.
* VXSE51 (InfoKind 震度速報): intensities 3 and up by 地震情報／細分区域 (Pref/Area), no municipalities, no hypocentre.
* VXSE52 (InfoKind 震源速報): the hypocentre only.

Intensities are kept exactly as JMA writes them (``1`` … ``4``, ``5-``, ``5+``, ``6-``, ``6+``, ``7``); a city
whose stations' intensity has not arrived carries ``Condition`` 震度５弱以上未入電 and no MaxInt. The
hypocentre's position comes from its ISO 6709 coordinate (``+39.0+140.9-10000/``: latitude, longitude,
height in metres, negative below the surface; no height when the depth is unknown), the magnitude from
jmx_eb:Magnitude (``NaN`` with condition 不明 when unknown: 'Ｍ不明', 'Ｍ８を超える巨大地震').
A 取消 (withdrawal) carries only Body/Text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from streams.official.head import NSX, ReportHead, need, number, optional_moment, read_head, text
from streams.official.report import MISSING_FIELD, UNHANDLED_CODE, ReportError

SOKUHO, HYPOCENTRE, INFORMATION = "震度速報", "震源速報", "地震情報"
TITLES = {"震度速報": SOKUHO, "震源に関する情報": HYPOCENTRE, "震源・震度に関する情報": INFORMATION}
VXSE = {SOKUHO: "VXSE51", HYPOCENTRE: "VXSE52", INFORMATION: "VXSE53"}
INTENSITIES = ("1", "2", "3", "4", "5-", "5+", "6-", "6+", "7")  # JMA's 震度階級 as written in the XML
NOT_ARRIVED = "震度５弱以上未入電"  # a station of intensity 5- or more whose value has not arrived
ISO6709 = re.compile(r"^([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)([+-]\d+(?:\.\d+)?)?/$")


class QuakeError(ReportError):
    """An earthquake report the hub cannot read: an unhandled title, status or intensity, or a missing element."""


@dataclass(frozen=True)
class Hypocentre:
    """Where the earthquake was: JMA's 震央地名 and the ISO 6709 position."""

    name: str  # e.g. 岩手県内陸南部
    code: str  # 震央地名 code
    latitude: float | None  # None when JMA gives no position (震源要素不明)
    longitude: float | None
    depth_km: float | None  # None when unknown (深さ不明); 0 for ごく浅い
    coordinate: str  # verbatim, e.g. +39.0+140.9-10000/
    description: str  # JMA's words, e.g. 北緯３９．０度　東経１４０．９度　深さ　１０ｋｍ
    detailed_name: str = ""  # 詳細震央地名 of a distant earthquake (フィジー諸島)


@dataclass(frozen=True)
class Magnitude:
    value: float | None  # None when unknown (NaN, condition 不明)
    type: str  # Mj | M | Mw …
    description: str  # JMA's words: Ｍ７．０, Ｍ不明, Ｍ８を超える巨大地震
    condition: str = ""  # 不明 when unknown


@dataclass(frozen=True)
class Earthquake:
    origin_time: int | None  # epoch ms
    arrival_time: int | None
    hypocentre: Hypocentre
    magnitude: Magnitude


@dataclass(frozen=True)
class AreaIntensity:
    """The highest intensity of one 地震情報／細分区域 (VXSE51, VXSE53)."""

    pref_code: str  # 地震情報／都道府県等 (01 … 47)
    pref_name: str
    code: str  # 地震情報／細分区域, e.g. 360 神奈川県東部
    name: str
    max_int: str  # 1 … 7 as written ("" when not arrived)
    condition: str = ""


@dataclass(frozen=True)
class CityIntensity:
    """The highest intensity of one 市町村等 (VXSE53), under its 細分区域."""

    pref_code: str
    area_code: str
    area_name: str
    code: str  # 7-digit 市町村等 code (気象・地震・火山情報／市町村等)
    name: str  # as JMA writes it (栃木さくら市, 横浜中区)
    max_int: str  # 1 … 7 as written; "" when the city only has Condition
    condition: str = ""  # 震度５弱以上未入電


@dataclass(frozen=True)
class QuakeReport:
    """An earthquake report: its head, the earthquake (VXSE52/53), the intensities (VXSE51/53), JMA's comments."""

    head: ReportHead
    earthquake: Earthquake | None
    max_int: str  # the report's highest intensity ("" when none)
    areas: tuple[AreaIntensity, ...] = ()
    cities: tuple[CityIntensity, ...] = ()
    comments: tuple[str, ...] = ()  # ForecastComment / VarComment / FreeFormComment texts (津波の心配はありません …)
    text: str = ""  # Body/Text (a withdrawal's words)

    @property
    def vxse(self) -> str:
        return VXSE[self.head.info_kind]

    @property
    def distant(self) -> bool:
        """A 遠地地震 (distant earthquake): a VXSE53 with a hypocentre and no intensities."""
        return self.head.info_kind == INFORMATION and not self.areas and self.earthquake is not None

    @property
    def prefectures(self) -> frozenset[str]:
        """The 地震情報／都道府県等 codes with intensities (the same 2 digits as JIS X 0401)."""
        return frozenset(a.pref_code for a in self.areas)


def parse_coordinate(value: str) -> tuple[float | None, float | None, float | None]:
    """(latitude, longitude, depth km) of an ISO 6709 string as JMA writes it; QuakeError when it is not one."""
    if not value:
        return None, None, None
    match = ISO6709.match(value)
    if not match:
        raise QuakeError(MISSING_FIELD, f"hypocentre coordinate {value!r} is not ISO 6709 (+DD.D+DDD.D-HHHHH/)")
    latitude, longitude = float(match.group(1)), float(match.group(2))
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise QuakeError(MISSING_FIELD, f"hypocentre coordinate {value!r} is outside the globe")
    height = match.group(3)
    return latitude, longitude, (-float(height) / 1000 if height is not None else None)


def read_earthquake(element: Any) -> Earthquake:
    """One Body/Earthquake: origin time, hypocentre (ISO 6709 position) and magnitude; QuakeError when malformed."""
    area = element.find("s:Hypocenter/s:Area", NSX)
    if area is None:
        raise QuakeError(MISSING_FIELD, "no Earthquake/Hypocenter/Area in the report")
    coordinate = area.find("eb:Coordinate", NSX)
    raw = (coordinate.text or "").strip() if coordinate is not None else ""
    latitude, longitude, depth = parse_coordinate(raw)
    magnitude = element.find("eb:Magnitude", NSX)
    if magnitude is None:
        raise QuakeError(MISSING_FIELD, "no Earthquake/Magnitude in the report")
    return Earthquake(
        origin_time=optional_moment(text(element, "s:OriginTime"), "OriginTime", QuakeError),
        arrival_time=optional_moment(text(element, "s:ArrivalTime"), "ArrivalTime", QuakeError),
        hypocentre=Hypocentre(
            name=text(area, "s:Name"),
            code=text(area, "s:Code"),
            latitude=latitude,
            longitude=longitude,
            depth_km=depth,
            coordinate=raw,
            description=coordinate.get("description", "") if coordinate is not None else "",
            detailed_name=text(area, "s:DetailedName"),
        ),
        magnitude=Magnitude(
            value=number((magnitude.text or "").strip(), "Magnitude", QuakeError),
            type=magnitude.get("type", ""),
            description=magnitude.get("description", ""),
            condition=magnitude.get("condition", ""),
        ),
    )


def _intensity(element: Any, what: str) -> tuple[str, str]:
    """(MaxInt, Condition) of a Pref/Area/City; QuakeError for an intensity that is not one of JMA's."""
    max_int, condition = text(element, "s:MaxInt"), text(element, "s:Condition")
    if max_int and max_int not in INTENSITIES:
        raise QuakeError(UNHANDLED_CODE, f"{what} MaxInt {max_int!r} (JMA's: {', '.join(INTENSITIES)})")
    if not max_int and not condition:
        raise QuakeError(MISSING_FIELD, f"{what} has neither MaxInt nor Condition")
    return max_int, condition


def _observation(observation: Any) -> tuple[list[AreaIntensity], list[CityIntensity]]:
    areas: list[AreaIntensity] = []
    cities: list[CityIntensity] = []
    for pref in observation.findall("s:Pref", NSX):
        pref_code = need(pref, "s:Code", QuakeError, "Pref/Code")
        for area in pref.findall("s:Area", NSX):
            code = need(area, "s:Code", QuakeError, "Pref/Area/Code")
            name = text(area, "s:Name")
            max_int, condition = _intensity(area, f"area {code} {name}")
            areas.append(AreaIntensity(pref_code, text(pref, "s:Name"), code, name, max_int, condition))
            for city in area.findall("s:City", NSX):
                city_code = need(city, "s:Code", QuakeError, "Pref/Area/City/Code")
                city_name = text(city, "s:Name")
                city_max, city_condition = _intensity(city, f"city {city_code} {city_name}")
                cities.append(CityIntensity(pref_code, code, name, city_code, city_name, city_max, city_condition))
    return areas, cities


def comments_of(body: Any) -> tuple[str, ...]:
    """JMA's comments in order: ForecastComment, VarComment (their Text), FreeFormComment (its text)."""
    words = ((text(c, "s:Text") or (c.text or "").strip()) for c in body.findall("s:Comments/*", NSX))
    return tuple(w for w in words if w)


def read_quake(root: Any) -> QuakeReport:
    """The report's values; QuakeError (a ReportError) for what the hub cannot read."""
    head = read_head(root, TITLES, QuakeError)
    body = root.find("s:Body", NSX)
    if body is None:
        raise QuakeError(MISSING_FIELD, "no seismology Body in the report")
    if head.info_type == "取消":
        return QuakeReport(head, None, "", text=text(body, "s:Text"))
    element = body.find("s:Earthquake", NSX)
    if element is None and head.info_kind != SOKUHO:
        raise QuakeError(MISSING_FIELD, f"no Body/Earthquake in a {head.info_kind}")
    earthquake = read_earthquake(element) if element is not None else None
    observation = body.find("s:Intensity/s:Observation", NSX)
    if observation is None and head.info_kind == SOKUHO:
        raise QuakeError(MISSING_FIELD, "no Body/Intensity/Observation in a 震度速報")
    areas, cities = _observation(observation) if observation is not None else ([], [])
    max_int = text(observation, "s:MaxInt") if observation is not None else ""
    if max_int and max_int not in INTENSITIES:
        raise QuakeError(UNHANDLED_CODE, f"Observation MaxInt {max_int!r} (JMA's: {', '.join(INTENSITIES)})")
    return QuakeReport(head, earthquake, max_int, tuple(areas), tuple(cities), comments_of(body))
