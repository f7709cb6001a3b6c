"""How the residents' map words and ranks what it shows (pure): levels, sources, credits, river stages.

Under the 気象業務法 only JMA issues 警報 and forecasts. JMA's reports (``source`` "jma") are shown as
JMA's, in JMA's words, with 「出典：気象庁」; the hub's own threshold alerts are labelled
観測値に基づく情報（気象庁の警報ではありません） and their levels are written 警戒レベルN相当, never a bare
警戒レベルN. Every label comes in Japanese first and English.

A *tone* names how an alert is coloured on the page (the stylesheet maps tones to colours); each tone has
a text label too, so nothing is told by colour alone.
"""

from __future__ import annotations

from typing import Any

from streams.kernel.messages import AvroRecord
from streams.kernel.model import RiverStages

Text = dict[str, str]  # {"ja": …, "en": …}
PageData = dict[str, Any]  # a JSON object the residents' page receives (built here, read by its script)

HUB_NOTE: Text = {
    "ja": "観測値に基づく情報（気象庁の警報ではありません）",
    "en": "Information based on observations (not a JMA warning)",
}
HUB_SOURCE: Text = {"ja": "防災データ連携基盤", "en": "bosai hub (disaster data platform)"}
JMA_SOURCE: Text = {"ja": "気象庁", "en": "Japan Meteorological Agency (JMA)"}
JMA_CREDIT = "出典：気象庁"
CREDITS: tuple[Text, ...] = (
    {
        "ja": "出典：気象庁（アメダス観測値・防災気象情報）",
        "en": "Source: Japan Meteorological Agency (AMeDAS observations, disaster information)",
    },
    {
        "ja": "「国土数値情報（行政区域データ）（国土交通省）」を加工して作成",
        "en": "Boundaries: processed from MLIT National Land Numerical Information (administrative areas)",
    },
    {
        "ja": "「3D都市モデル（Project PLATEAU）相模原市（2020年度）（国土交通省）」を加工して作成（CC BY 4.0）",
        "en": "Hazard zones: processed from MLIT Project PLATEAU Sagamihara (FY2020), CC BY 4.0",
    },
)

# JMA report kinds (Head/InfoKind) the page knows an English name for; others are shown as JMA wrote them.
JMA_KINDS_EN = {
    "土砂災害警戒情報": "Landslide alert information",
    "指定河川洪水予報": "Flood forecast for a designated river",
    "記録的短時間大雨情報": "Record short-duration heavy rain information",
}
LANDSLIDE_ALERT_INFO = "土砂災害警戒情報"

SEVERITY_RANK = {"Extreme": 4, "Severe": 3, "Moderate": 2, "Minor": 1, "Unknown": 0}

# Tones, most serious first: key -> legend label. Alerts with a 警戒レベル take its tone; the others
# (e.g. rain intensity bands) take the tone of their CAP severity.
TONES: dict[str, Text] = {
    "level5": {"ja": "警戒レベル5相当", "en": "Equivalent to alert level 5"},
    "level4": {"ja": "警戒レベル4相当", "en": "Equivalent to alert level 4"},
    "level3": {"ja": "警戒レベル3相当", "en": "Equivalent to alert level 3"},
    "level2": {"ja": "警戒レベル2相当", "en": "Equivalent to alert level 2"},
    "extreme": {"ja": "観測値：極めて重大", "en": "Observed: extreme"},
    "severe": {"ja": "観測値：重大", "en": "Observed: severe"},
    "moderate": {"ja": "観測値：中程度", "en": "Observed: moderate"},
    "minor": {"ja": "観測値：軽度", "en": "Observed: minor"},
}
_SEVERITY_TONE = {"Extreme": "extreme", "Severe": "severe", "Moderate": "moderate"}

# A river gauge's water level against its own published stages (水位周知河川), highest reached first.
RIVER_STAGE_LABELS: tuple[tuple[str, Text], ...] = (
    ("overflow", {"ja": "氾濫発生（警戒レベル5相当）", "en": "Flooding (equivalent to alert level 5)"}),
    ("danger", {"ja": "氾濫危険水位以上（警戒レベル4相当）", "en": "Flood danger level (equivalent to level 4)"}),
    (
        "evacuation",
        {"ja": "避難判断水位以上（警戒レベル3相当）", "en": "Evacuation judgement level (equivalent to level 3)"},
    ),
    ("caution", {"ja": "氾濫注意水位以上（警戒レベル2相当）", "en": "Flood caution level (equivalent to level 2)"}),
    ("standby", {"ja": "水防団待機水位以上", "en": "Flood-fighting standby level"}),
)
RIVER_NORMAL: Text = {"ja": "水防団待機水位未満", "en": "Below the standby level"}

# JMA's rain intensity words (雨の強さ) by 1-hour rainfall, for a rain gauge's marker.
RAIN_CLASSES: tuple[tuple[float, str], ...] = (
    (80.0, "rain80"),  # 猛烈な雨
    (50.0, "rain50"),  # 非常に激しい雨
    (30.0, "rain30"),  # 激しい雨
    (20.0, "rain20"),  # 強い雨
    (10.0, "rain10"),  # やや強い雨
    (1.0, "rain1"),
)


def tone_of(record: AvroRecord) -> str:
    warning_level = record.get("warning_level")
    if warning_level:
        return f"level{min(max(int(warning_level), 2), 5)}"
    return _SEVERITY_TONE.get(record.get("severity", ""), "minor")


def priority(record: AvroRecord) -> tuple[int, int, int, int]:
    """Which alert a municipality is coloured by: 警戒レベル first, then severity, level, recency."""
    return (
        int(record.get("warning_level") or 0),
        SEVERITY_RANK.get(record.get("severity", ""), 0),
        int(record.get("level_rank") or 0),
        int(record["observed_at"]),
    )


def is_jma(record: AvroRecord) -> bool:
    return record.get("source") == "jma"


def level_label(record: AvroRecord, event_en: str | None) -> Text:
    """警戒レベルN相当 where the alert maps to one; otherwise what was observed (e.g. 非常に激しい雨)."""
    warning_level = record.get("warning_level")
    if warning_level:
        return {"ja": f"警戒レベル{warning_level}相当", "en": f"Equivalent to alert level {warning_level}"}
    return {"ja": record["event"], "en": event_en or record["event"]}


def what_label(record: AvroRecord, event_en: str | None) -> Text:
    """What the alert is about: JMA's report kind as JMA names it, or the hub's observed event."""
    official = record.get("official") or {}
    if is_jma(record) and official.get("info_kind"):
        kind = official["info_kind"]
        return {"ja": kind, "en": JMA_KINDS_EN.get(kind, kind)}
    return {"ja": record["event"], "en": event_en or record["event"]}


def source_label(record: AvroRecord) -> PageData:
    """Who issued it, and the note or credit that goes with it."""
    if is_jma(record):
        official = record.get("official") or {}
        credit = official.get("credit") or JMA_CREDIT
        return {"kind": "jma", "name": JMA_SOURCE, "note": {"ja": credit, "en": "Source: JMA"}}
    return {"kind": "hub", "name": HUB_SOURCE, "note": HUB_NOTE}


def headline(record: AvroRecord, *, station_name_en: str | None, area_en: str, event_en: str | None) -> Text:
    """JMA's own headline for its reports; the hub's headline, with an English line, for its own."""
    official = record.get("official") or {}
    if is_jma(record):
        words = official.get("headline") or official.get("head_title") or record["headline"]
        return {"ja": words, "en": words}
    value = record.get("value")
    amount = f"{value:g} {record.get('unit', '')}".strip() if value is not None else ""
    cleared = " cleared" if record["msg_type"] == "CANCEL" else ""
    where = station_name_en or record["station_id"]
    return {"ja": record["headline"], "en": f"{where} ({area_en}): {event_en or record['event']}{cleared}: {amount}"}


def river_stage(level_m: float | None, stages: RiverStages | None) -> PageData | None:
    """The highest published stage a water level reaches, with its label; None without stages or level."""
    if stages is None or level_m is None:
        return None
    for key, label in RIVER_STAGE_LABELS:
        threshold = getattr(stages, f"{key}_m")
        if threshold is not None and level_m >= threshold:
            return {"key": key, "label": label}
    return {"key": "normal", "label": RIVER_NORMAL}


def rain_class(precipitation_1h: float | None) -> str:
    if precipitation_1h is None:
        return "rain-missing"
    for threshold, name in RAIN_CLASSES:
        if precipitation_1h >= threshold:
            return name
    return "rain0"
