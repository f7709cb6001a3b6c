"""津波 (JMA's tsunami warnings and information) as values: VTSE41, VTSE51, VTSE52.

Pure; reads a report already parsed safely and validated against JMA's schema (see :mod:`streams.official.head`).

* VTSE41 ``津波警報・注意報・予報a`` (InfoKind 津波警報・注意報・予報): per 津波予報区 (tsunami forecast area,
  Body/Tsunami/Forecast/Item/Area, 3-digit codes: 330 相模湾・三浦半島, 312 東京湾内湾 …) the kind in effect
  with JMA's code (:data:`KINDS`: 52/53 大津波警報, 51 津波警報, 62 津波注意報, 71–73 津波予報（若干の海面変動）,
  50 警報解除, 60 津波注意報解除, 00 津波なし) and the one before it (LastKind), the first wave's expected
  arrival (a time, or a condition such as 津波到達中と推測 / ただちに津波来襲と予測) and the expected maximum
  height (metres, or JMA's words 巨大 / 高い when the magnitude is not yet known).
* VTSE51 ``津波情報a`` (InfoKind 津波情報): the same per-area forecast with each area's stations (expected
  arrival, high tide), and the observations per station (Body/Tsunami/Observation: first wave 押し/引き
  and its time, the highest wave so far and when, or JMA's conditions 観測中 / 欠測 / 微弱 / 重要).
* VTSE52 ``沖合の津波観測に関する情報`` (InfoKind 津波情報): offshore stations' observations (with the sensor,
  e.g. ＧＰＳ波浪計) and the heights they imply at the coast per area (Body/Tsunami/Estimation).

Which municipalities a 津波予報区 covers is not in the report: it comes from the pack's jma_tsunami_areas.csv.
Every report also carries the earthquake(s) that caused it (several for an EventID of several ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.official.head import NSX, ReportHead, need, number, optional_moment, read_head, text
from streams.official.quake import Earthquake, QuakeError, comments_of, read_earthquake
from streams.official.report import MISSING_FIELD, UNHANDLED_CODE, ReportError

WARNING, INFORMATION = "津波警報・注意報・予報", "津波情報"
TITLES = {"津波警報・注意報・予報a": WARNING, "津波情報a": INFORMATION, "沖合の津波観測に関する情報": INFORMATION}
VTSE = {"津波警報・注意報・予報a": "VTSE41", "津波情報a": "VTSE51", "沖合の津波観測に関する情報": "VTSE52"}
# JMA's 警報等情報要素／津波警報・注意報・予報 codes → grade (大津波警報 3, 津波警報 2, 津波注意報 1, none 0)
KINDS = {
    "52": ("大津波警報", 3),
    "53": ("大津波警報：発表", 3),
    "51": ("津波警報", 2),
    "62": ("津波注意報", 1),
    "71": ("津波予報（若干の海面変動）", 0),
    "72": ("津波予報（若干の海面変動）", 0),
    "73": ("津波予報（若干の海面変動）", 0),
    "50": ("警報解除", 0),
    "60": ("津波注意報解除", 0),
    "00": ("津波なし", 0),
}
GRADE_NAMES = {3: "大津波警報", 2: "津波警報", 1: "津波注意報", 0: ""}


class TsunamiError(ReportError):
    """A tsunami report the hub cannot read: an unhandled title, status or kind code, or a missing element."""


@dataclass(frozen=True)
class Height:
    """A tsunami height: metres, or JMA's words when there is no number (巨大, 高い; 上昇中; 欠測 …)."""

    value_m: float | None  # None when JMA gives no number (NaN, condition 不明)
    description: str  # JMA's words: １ｍ, ３ｍ, １０ｍ超, 巨大, 高い, ０．２ｍ未満
    condition: str = ""  # 不明 | 上昇中 | "" (of the height itself)
    type: str = ""  # 津波の高さ | これまでの最大波の高さ


@dataclass(frozen=True)
class ForecastArea:
    """One 津波予報区 of a VTSE41/VTSE51 forecast, or an area of a VTSE52 estimation (kind then "")."""

    code: str  # 津波予報区 code, e.g. 330
    name: str  # e.g. 相模湾・三浦半島
    kind_code: str  # 52, 53, 51, 62, 71 … ("" in an estimation)
    kind_name: str  # verbatim, e.g. 大津波警報：発表
    last_kind_code: str
    last_kind_name: str
    first_arrival: int | None  # expected first wave, epoch ms
    first_condition: str  # 津波到達中と推測 | ただちに津波来襲と予測 | 第１波の到達を確認 | …
    max_height: Height | None
    max_condition: str = ""  # MaxHeight/Condition, e.g. 重要
    revise: str = ""  # 追加 | 更新 (what changed since the last report)

    @property
    def grade(self) -> int:
        """3 大津波警報, 2 津波警報, 1 津波注意報, 0 津波予報 / 解除 / なし."""
        return KINDS[self.kind_code][1] if self.kind_code in KINDS else 0

    @property
    def warning(self) -> str:
        """The warning this area is under (大津波警報 / 津波警報 / 津波注意報), "" when none."""
        return GRADE_NAMES[self.grade]


@dataclass(frozen=True)
class StationForecast:
    """A tide station of a 津波予報区 in VTSE51: its expected first wave and high tide."""

    area_code: str
    code: str
    name: str
    first_arrival: int | None
    first_condition: str
    high_tide: int | None


@dataclass(frozen=True)
class Observation:
    """A station's observation (VTSE51 coastal, VTSE52 offshore): the first wave and the highest so far."""

    area_code: str  # 津波予報区 (VTSE51) or the offshore area (VTSE52)
    area_name: str
    code: str
    name: str
    sensor: str  # VTSE52: ＧＰＳ波浪計, 水圧計 … ("" for a coastal station)
    first_arrival: int | None
    first_initial: str  # 押し | 引き
    first_condition: str  # 第１波識別不能 | …
    max_height: Height | None
    max_time: int | None
    max_condition: str  # 観測中 | 重要 | 欠測 | 微弱 | …


@dataclass(frozen=True)
class TsunamiReport:
    head: ReportHead
    forecast: tuple[ForecastArea, ...] = ()  # VTSE41, VTSE51
    stations: tuple[StationForecast, ...] = ()  # VTSE51
    observations: tuple[Observation, ...] = ()  # VTSE51, VTSE52
    estimations: tuple[ForecastArea, ...] = ()  # VTSE52: heights at the coast implied by offshore observations
    earthquakes: tuple[Earthquake, ...] = ()
    comments: tuple[str, ...] = ()  # WarningComment / FreeFormComment: JMA's words
    text: str = ""  # Body/Text (a withdrawal's words)

    @property
    def vtse(self) -> str:
        return VTSE[self.head.control_title]


def _height(parent: Any, what: str) -> Height | None:
    element = parent.find("eb:TsunamiHeight", NSX) if parent is not None else None
    if element is None:
        return None
    value = number((element.text or "").strip(), what, TsunamiError)
    return Height(value, element.get("description", ""), element.get("condition", ""), element.get("type", ""))


def _kind(item: Any, path: str) -> tuple[str, str]:
    code, name = text(item, f"{path}/s:Code"), text(item, f"{path}/s:Name")
    if code not in KINDS:
        raise TsunamiError(UNHANDLED_CODE, f"tsunami kind code {code!r} ({name}) (handled: {', '.join(KINDS)})")
    return code, name


def _area(item: Any, estimated: bool) -> ForecastArea:
    code = need(item, "s:Area/s:Code", TsunamiError, "津波予報区 Area/Code")
    kind_code, kind_name = ("", "") if estimated else _kind(item, "s:Category/s:Kind")
    last_code, last_name = ("", "") if estimated else _kind(item, "s:Category/s:LastKind")
    return ForecastArea(
        code=code,
        name=text(item, "s:Area/s:Name"),
        kind_code=kind_code,
        kind_name=kind_name,
        last_kind_code=last_code,
        last_kind_name=last_name,
        first_arrival=optional_moment(
            text(item, "s:FirstHeight/s:ArrivalTime"), "FirstHeight/ArrivalTime", TsunamiError
        ),
        first_condition=text(item, "s:FirstHeight/s:Condition"),
        max_height=_height(item.find("s:MaxHeight", NSX), f"MaxHeight of area {code}"),
        max_condition=text(item, "s:MaxHeight/s:Condition"),
        revise=text(item, "s:FirstHeight/s:Revise") or text(item, "s:MaxHeight/s:Revise"),
    )


def _station_forecasts(item: Any, area_code: str) -> list[StationForecast]:
    return [
        StationForecast(
            area_code=area_code,
            code=text(station, "s:Code"),
            name=text(station, "s:Name"),
            first_arrival=optional_moment(text(station, "s:FirstHeight/s:ArrivalTime"), "ArrivalTime", TsunamiError),
            first_condition=text(station, "s:FirstHeight/s:Condition"),
            high_tide=optional_moment(text(station, "s:HighTideDateTime"), "HighTideDateTime", TsunamiError),
        )
        for station in item.findall("s:Station", NSX)
    ]


def _observations(observation: Any) -> list[Observation]:
    out = []
    for item in observation.findall("s:Item", NSX):
        area_code, area_name = text(item, "s:Area/s:Code"), text(item, "s:Area/s:Name")
        for station in item.findall("s:Station", NSX):
            code = text(station, "s:Code")
            out.append(
                Observation(
                    area_code=area_code,
                    area_name=area_name,
                    code=code,
                    name=text(station, "s:Name"),
                    sensor=text(station, "s:Sensor"),
                    first_arrival=optional_moment(
                        text(station, "s:FirstHeight/s:ArrivalTime"), "ArrivalTime", TsunamiError
                    ),
                    first_initial=text(station, "s:FirstHeight/s:Initial"),
                    first_condition=text(station, "s:FirstHeight/s:Condition"),
                    max_height=_height(station.find("s:MaxHeight", NSX), f"MaxHeight of station {code}"),
                    max_time=optional_moment(
                        text(station, "s:MaxHeight/s:DateTime"), "MaxHeight/DateTime", TsunamiError
                    ),
                    max_condition=text(station, "s:MaxHeight/s:Condition"),
                )
            )
    return out


def _earthquakes(body: Any) -> tuple[Earthquake, ...]:
    try:
        return tuple(read_earthquake(e) for e in body.findall("s:Earthquake", NSX))
    except QuakeError as exc:
        raise TsunamiError(exc.reason, exc.detail) from None


def read_tsunami(root: Any) -> TsunamiReport:
    """The report's values; TsunamiError (a ReportError) for what the hub cannot read."""
    head = read_head(root, TITLES, TsunamiError)
    body = root.find("s:Body", NSX)
    if body is None:
        raise TsunamiError(MISSING_FIELD, "no seismology Body in the report")
    if head.info_type == "取消":
        return TsunamiReport(head, text=text(body, "s:Text"))
    tsunami = body.find("s:Tsunami", NSX)
    if tsunami is None:
        raise TsunamiError(MISSING_FIELD, "no Body/Tsunami in the report")
    forecast, stations = [], []
    for item in tsunami.findall("s:Forecast/s:Item", NSX):
        area = _area(item, estimated=False)
        forecast.append(area)
        stations += _station_forecasts(item, area.code)
    observations = [o for element in tsunami.findall("s:Observation", NSX) for o in _observations(element)]
    estimations = [_area(item, estimated=True) for item in tsunami.findall("s:Estimation/s:Item", NSX)]
    if VTSE[head.control_title] == "VTSE41" and not forecast:
        raise TsunamiError(MISSING_FIELD, "no Body/Tsunami/Forecast/Item in a 津波警報・注意報・予報")
    return TsunamiReport(
        head=head,
        forecast=tuple(forecast),
        stations=tuple(stations),
        observations=tuple(observations),
        estimations=tuple(estimations),
        earthquakes=_earthquakes(body),
        comments=comments_of(body),
    )
