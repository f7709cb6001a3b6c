"""An official JMA report (気象庁防災情報XML) as values: what the hub reads from a validated document.

Pure: it takes the root element of a report that the adapter (``streams.official.jma_xml``) has
already parsed safely and validated against JMA's schema, and reads it with ElementTree-style
``find``/``findall`` (lxml elements and ``xml.etree`` elements both work). Three kinds are handled,
recognised by Control/Title and Head/InfoKind — never by Head/Title, which JMA renames (from late May
2026 the 土砂災害警戒情報 of 神奈川県 is titled ``神奈川県レベル４土砂災害危険警報``):

* 土砂災害警戒情報 (VXWW50, landslide alert information): Body/Warning lists every area of the
  prefecture with its status in this report (発表, 継続, 解除, なし);
* 指定河川洪水予報 (VXKO…, flood forecast of a designated river): the forecast's kind code (20 氾濫注意,
  30 警戒, 40 危険, 50 発生, 10 解除 …), the cities of its 浸水想定地区, the gauges' water levels;
* 記録的短時間大雨情報 (VPOA50, record short-duration heavy rain): the forecast areas it is issued for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parsed documents are lxml's elements (parsed safely by jma_xml)
    from lxml.etree import _Element as Element

NS = {
    "jmx": "http://xml.kishou.go.jp/jmaxml1/",
    "ib": "http://xml.kishou.go.jp/jmaxml1/informationBasis1/",
    "b": "http://xml.kishou.go.jp/jmaxml1/body/meteorology1/",
    "eb": "http://xml.kishou.go.jp/jmaxml1/elementBasis1/",
}

LANDSLIDE, FLOOD, RECORD_RAIN = "土砂災害警戒情報", "指定河川洪水予報", "記録的短時間大雨情報"
KINDS = (LANDSLIDE, FLOOD, RECORD_RAIN)
# Control/Status → CAP status. 通常 is a real report; 訓練 (exercise) and 試験 (test) are never Actual.
STATUSES = {"通常": "Actual", "訓練": "Exercise", "試験": "Test"}
INFO_TYPES = ("発表", "訂正", "取消")
OBSERVED = "現況"  # the TimeDefine of a flood forecast's observed values; the others are forecast hours
SERIAL = re.compile(r"[0-9]{1,9}")  # ASCII digits only
UNUSABLE_LEVEL = ("欠測", "未計算")  # jmx_eb:WaterLevel conditions without a usable observation

# Reasons a report is dead-lettered (DeadLetter.reason).
UNHANDLED_KIND, UNHANDLED_CODE, MISSING_FIELD = "unhandled_kind", "unhandled_code", "missing_field"


class ReportError(Exception):
    """A valid report the hub cannot use: a kind, status or code it does not handle, or a missing element."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class AreaStatus:
    """One Body/Warning item: an area and its status in this report."""

    code: str
    name: str
    kind_code: str
    kind_name: str
    status: str  # 発表 | 継続 | 解除 | なし (landslide); 発表 | なし (record rain)


@dataclass(frozen=True)
class FloodCity:
    """A city of a flood forecast's 浸水想定地区 (7-digit 市町村等 code)."""

    code: str
    name: str


@dataclass(frozen=True)
class WaterLevel:
    """A gauge's observed water level (the 現況 time only), metres."""

    station_code: str  # 17-digit 水位観測所 code
    station_name: str
    observed_at: int
    value_m: float


@dataclass(frozen=True)
class Flood:
    """What a 指定河川洪水予報 says: its kind, the forecast area, the cities, the observed levels."""

    kind_code: str
    kind_name: str
    condition: str
    area_code: str  # 指定河川洪水予報（予報区域） code, e.g. 890904000100
    area_name: str
    main_text: str  # Body/Warning 主文: JMA's words
    cities: tuple[FloodCity, ...]
    levels: tuple[WaterLevel, ...]
    prefecture_areas: tuple[str, ...] = ()  # 府県予報区 codes of the Headline (410000 佐賀県)


class ReportOrder:
    """What every report's head gives: CAP status and the order reports of one event apply in."""

    control_status: str
    serial: str
    report_datetime: int

    @property
    def status(self) -> str:
        """CAP status: Actual (通常), Exercise (訓練) or Test (試験)."""
        return STATUSES[self.control_status]

    @property
    def serial_number(self) -> int:
        """Serial as a number; 0 when it is not one (JMA's schema allows any string: '²' passes isdigit())."""
        return int(self.serial) if SERIAL.fullmatch(self.serial) else 0

    @property
    def order(self) -> tuple[int, int]:
        """Reports of one event apply in ReportDateTime order; Serial breaks ties."""
        return (self.report_datetime, self.serial_number)


@dataclass(frozen=True)
class JmaReport(ReportOrder):
    """The parts of a report the hub relays and reasons on."""

    control_title: str
    control_status: str
    publishing_office: str
    head_title: str
    report_datetime: int  # epoch ms
    event_id: str
    info_type: str
    serial: str
    info_kind: str
    headline_text: str
    areas: tuple[AreaStatus, ...] = ()  # landslide and record rain
    flood: Flood | None = None

    @property
    def key(self) -> str:
        return report_key(self.info_kind, self.event_id, self.control_status)


def report_key(info_kind: str, event_id: str, control_status: str) -> str:
    """The Kafka key (and state key) of a report: one event's reports share it and stay in order.

    Exercises and tests get keys of their own, so they never touch a real event's state.
    """
    base = f"{info_kind}|{event_id}"
    return base if control_status == "通常" else f"{base}|{control_status}"


def epoch_ms(text: str | None, what: str) -> int:
    """An xs:dateTime of a report (with offset, or Z) as epoch milliseconds."""
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise ReportError(MISSING_FIELD, f"{what} is {text!r}, not a date-time with offset") from None
    if moment.tzinfo is None:
        raise ReportError(MISSING_FIELD, f"{what} {text!r} has no time-zone offset")
    return int(moment.timestamp() * 1000)


def _text(element: Element, path: str) -> str:
    found = element.find(path, NS)
    return (found.text or "").strip() if found is not None else ""


def _need(element: Element, path: str) -> str:
    value = _text(element, path)
    if not value:
        raise ReportError(MISSING_FIELD, f"no {path.split(':')[-1]} in the report")
    return value


def read_report(root: Element) -> JmaReport:
    """The report's values; ReportError for a kind, status or info type the hub does not handle."""
    control_title = _need(root, "jmx:Control/jmx:Title")
    info_kind = _need(root, "ib:Head/ib:InfoKind")
    if info_kind not in KINDS or control_title != info_kind:
        raise ReportError(
            UNHANDLED_KIND, f"Control/Title {control_title!r}, InfoKind {info_kind!r} (handled: {', '.join(KINDS)})"
        )
    control_status = _need(root, "jmx:Control/jmx:Status")
    if control_status not in STATUSES:
        raise ReportError(UNHANDLED_CODE, f"Control/Status {control_status!r} (handled: {', '.join(STATUSES)})")
    info_type = _need(root, "ib:Head/ib:InfoType")
    if info_type not in INFO_TYPES:
        raise ReportError(UNHANDLED_CODE, f"InfoType {info_type!r} (handled: {', '.join(INFO_TYPES)})")
    report = JmaReport(
        control_title=control_title,
        control_status=control_status,
        publishing_office=_text(root, "jmx:Control/jmx:PublishingOffice"),
        head_title=_text(root, "ib:Head/ib:Title"),
        report_datetime=epoch_ms(_text(root, "ib:Head/ib:ReportDateTime"), "ReportDateTime"),
        event_id=_need(root, "ib:Head/ib:EventID"),
        info_type=info_type,
        serial=_text(root, "ib:Head/ib:Serial"),
        info_kind=info_kind,
        headline_text=_text(root, "ib:Head/ib:Headline/ib:Text"),
    )
    body = root.find("b:Body", NS)
    if info_kind == FLOOD:
        return replace(report, flood=_flood(root, body))
    if body is None:
        raise ReportError(MISSING_FIELD, "no meteorological Body in the report")
    return replace(report, areas=_warning_areas(body))


def _warning_areas(body: Element) -> tuple[AreaStatus, ...]:
    """Every Body/Warning/Item with one Area (土砂災害警戒情報, 記録的短時間大雨情報)."""
    out = []
    for item in body.findall("b:Warning/b:Item", NS):
        area = item.find("b:Area", NS)
        if area is None:
            continue
        out.append(
            AreaStatus(
                code=_text(area, "b:Code"),
                name=_text(area, "b:Name"),
                kind_code=_text(item, "b:Kind/b:Code"),
                kind_name=_text(item, "b:Kind/b:Name"),
                status=_text(item, "b:Kind/b:Status"),
            )
        )
    return tuple(out)


def _flood_kind(root: Element) -> tuple[str, str, str, str, str]:
    """(kind code, kind name, condition, forecast area code, name) from the Headline's 予報区域 item."""
    for information in root.findall("ib:Head/ib:Headline/ib:Information", NS):
        if information.get("type") != "指定河川洪水予報（予報区域）":
            continue
        item = information.find("ib:Item", NS)
        area = item.find("ib:Areas/ib:Area", NS) if item is not None else None
        if item is not None and area is not None:
            return (
                _text(item, "ib:Kind/ib:Code"),
                _text(item, "ib:Kind/ib:Name"),
                _text(item, "ib:Kind/ib:Condition"),
                _text(area, "ib:Code"),
                _text(area, "ib:Name"),
            )
    raise ReportError(
        MISSING_FIELD, "no Headline Information of type 指定河川洪水予報（予報区域） with a Kind and an Area"
    )


def _flood(root: Element, body: Element | None) -> Flood:
    code, name, condition, area_code, area_name = _flood_kind(root)
    if not code:
        raise ReportError(MISSING_FIELD, "the flood forecast's Kind has no Code")
    main_text, cities, levels = "", list[FloodCity](), tuple[WaterLevel, ...]()
    if body is not None:
        for item in body.findall("b:Warning/b:Item", NS):
            if _text(item, "b:Kind/b:Property/b:Type") == "主文" and not main_text:
                main_text = _text(item, "b:Kind/b:Property/b:Text")
            if _text(item, "b:Kind/b:Name").startswith("浸水想定地区"):
                for area in item.findall("b:Areas/b:Area", NS):
                    city = FloodCity(_text(area, "b:CityCode"), _text(area, "b:City"))
                    if city.code and city not in cities:
                        cities.append(city)
        levels = observed_levels(body)
    prefecture_areas = tuple(
        _text(area, "ib:Code")
        for information in root.findall("ib:Head/ib:Headline/ib:Information", NS)
        if information.get("type") == "指定河川洪水予報（府県予報区等）"
        for area in information.findall("ib:Item/ib:Areas/ib:Area", NS)
    )
    return Flood(code, name, condition, area_code, area_name, main_text, tuple(cities), levels, prefecture_areas)


def observed_levels(body: Element) -> tuple[WaterLevel, ...]:
    """Each gauge's water level at the TimeDefine named 現況 — never a forecast hour, never 欠測 or 未計算."""
    out = []
    for series in body.findall("b:MeteorologicalInfos/b:TimeSeriesInfo", NS):
        observed = {
            define.get("timeId"): epoch_ms(_text(define, "b:DateTime"), "TimeDefine/DateTime")
            for define in series.findall("b:TimeDefines/b:TimeDefine", NS)
            if _text(define, "b:Name") == OBSERVED
        }
        if not observed:
            continue
        for item in series.findall("b:Item", NS):
            station = item.find("b:Station", NS)
            if station is None:
                continue
            for level in item.findall("b:Kind/b:Property/b:WaterLevelPart/eb:WaterLevel", NS):
                ref = level.get("refID")
                text = (level.text or "").strip()
                if level.get("type") != "水位" or ref not in observed or not text:
                    continue
                if level.get("condition") in UNUSABLE_LEVEL:
                    continue
                try:
                    value = float(text)
                except ValueError:
                    continue
                out.append(WaterLevel(_text(station, "b:Code"), _text(station, "b:Name"), observed[ref], value))
    return tuple(out)


def prefectures_of(report: JmaReport) -> set[str]:
    """The 2-digit prefecture codes a report concerns (which packs' topics it goes to)."""
    if report.flood is not None:
        return {c.code[:2] for c in report.flood.cities} | {a[:2] for a in report.flood.prefecture_areas if a}
    return {a.code[:2] for a in report.areas if a.code}
